"""Typed, validated configuration: recipes (what to do to a model) and targets (where it will run)."""
