"""Benchmarking: device-side runner (numpy + one runtime), host-side sweep, statistics, reports and the gate."""
