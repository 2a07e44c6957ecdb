"""Compression: the stage protocol and registry (`stage.py`), one file per stage kind (`stages/`), and the
implementations they call: distillation, pruning, PTQ and QAT. See docs/ARCHITECTURE.md."""
