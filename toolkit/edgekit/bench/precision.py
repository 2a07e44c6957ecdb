"""An artifact's precision, read from the model itself, not from its file name (host side).

A QDQ ONNX model named `pct_pc.onnx` is INT8 whatever it is called; each format reads its own files
(`Format.precision_of`), and a name or a sidecar is used only when the file cannot be read here (a TensorRT
engine, a runtime that is not installed).
"""

from __future__ import annotations

from pathlib import Path

from ..formats import format_named, format_of, precision_in_name


def precision_of(path: Path, sidecar: dict) -> str:
    fmt = format_of(path)
    found = format_named(fmt).precision_of(path) if fmt and path.exists() else None
    if found:
        return found
    if sidecar.get("precision"):
        return sidecar["precision"]
    return precision_in_name(path)
