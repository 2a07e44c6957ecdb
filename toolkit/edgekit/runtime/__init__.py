"""One small interface over every runtime: `load(artifact, runtime, ...) -> session`, `session.run(batch)`.

A session takes float32 NCHW batches and returns float32 outputs in the model's order, whatever the runtime does
inside (int8 I/O, device buffers, fixed batch). Each runtime is one file of this package that registers its rows
(`registry.py`); only numpy is imported here, and each file imports its own library when it loads a model, so the
device-side bench runner pulls in nothing it does not use.
"""

from __future__ import annotations

from pathlib import Path

from .registry import RuntimeUnavailable as RuntimeUnavailable
from .registry import default_runtime_name, known_suffixes, runtime, runtimes
from .registry import preload as preload
from .registry import runs as runs


def default_runtime(artifact: str | Path) -> str:
    name = default_runtime_name(artifact)
    if name is None:
        raise RuntimeUnavailable(f"{artifact}: no runtime runs {Path(artifact).suffix or 'extensionless'} files; "
                                 f"known: {', '.join(known_suffixes())}")
    return name


def load(artifact: str | Path, runtime_name: str | None = None, threads: int | None = 1, xnnpack: bool = True):
    """A session for `artifact` on `runtime_name` (default: the one its file type implies)."""
    name = runtime_name or default_runtime(artifact)
    row = runtime(name)
    if not runs(name, artifact):
        raise RuntimeUnavailable(f"{artifact}: {name} runs {', '.join(row.opens)} files")
    return row.loader(artifact, name, threads, xnnpack)


__all__ = ["RuntimeUnavailable", "default_runtime", "load", "preload", "runs", "runtimes"]
