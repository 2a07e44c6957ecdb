"""Exporters: each turns a model into the artifact a target's runtime loads, plus a sidecar and a parity check."""
