"""Compression stages. Each takes a model and returns a model (or artifact) with a StageReport."""
