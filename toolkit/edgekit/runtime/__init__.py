"""One small interface over every runtime: `load(artifact, runtime, ...) -> session`, `session.run(batch)`.

A session takes float32 NCHW batches and returns float32 outputs in the model's order, whatever the runtime does
inside (int8 I/O, device buffers, fixed batch). Only numpy is imported here; each backend imports its own runtime
when it is loaded, so the device-side bench runner pulls in nothing it does not use.
"""

from __future__ import annotations

from pathlib import Path

from ..formats import FORMATS, RUNTIMES, known_suffixes, loader
from ..formats import default_runtime as _default_runtime
from ..formats import runs as runs


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (not installed, no GPU, wrong artifact type)."""


def default_runtime(artifact: str | Path) -> str:
    name = _default_runtime(artifact)
    if name is None:
        raise RuntimeUnavailable(f"{artifact}: no runtime runs {Path(artifact).suffix or 'extensionless'} files; "
                                 f"known: {', '.join(known_suffixes())}")
    return name


def preload(runtime: str) -> None:
    """Import a runtime's library without creating a session (the bench measures the model's memory apart
    from the library's). A runtime that is missing is left for `load` to report."""
    try:
        if runtime.startswith("onnxruntime"):
            import onnxruntime  # noqa: F401
        elif runtime == "litert":
            from .litert import interpreter_class

            interpreter_class()
        elif runtime == "tensorrt":
            import tensorrt  # noqa: F401
        elif runtime.startswith("torch"):
            import torch  # noqa: F401
    except ImportError:
        pass


def load(artifact: str | Path, runtime: str | None = None, threads: int | None = 1, xnnpack: bool = True):
    """A session for `artifact` on `runtime` (default: the one its file type implies)."""
    runtime = runtime or default_runtime(artifact)
    if runtime not in RUNTIMES:
        raise RuntimeUnavailable(f"unknown runtime {runtime!r}; expected one of {', '.join(RUNTIMES)}")
    if not runs(runtime, artifact):
        raise RuntimeUnavailable(f"{artifact}: {runtime} runs "
                                 f"{', '.join(FORMATS[RUNTIMES[runtime].format].suffixes)} files")
    return loader(runtime)(artifact, runtime, threads, xnnpack)
