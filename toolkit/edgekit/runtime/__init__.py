"""Runtimes: load(artifact) -> a session whose run(batch) returns numpy outputs. No torch imports here."""
