"""One small interface over every runtime: `load(artifact, runtime, ...) -> session`, `session.run(batch)`.

A session takes float32 NCHW batches and returns float32 outputs in the model's order, whatever the runtime does
inside (int8 I/O, device buffers, fixed batch). Only numpy is imported here; each backend imports its own runtime
when it is loaded, so the device-side bench runner pulls in nothing it does not use.
"""

from __future__ import annotations

from pathlib import Path

# runtime name -> (artifact suffixes it runs, what it is)
RUNTIMES = {
    "onnxruntime": ((".onnx",), "ONNX Runtime, CPU execution provider"),
    "onnxruntime-cuda": ((".onnx",), "ONNX Runtime, CUDA execution provider"),
    "onnxruntime-tensorrt": ((".onnx",), "ONNX Runtime, TensorRT execution provider"),
    "litert": ((".tflite",), "LiteRT (ai-edge-litert, or tflite_runtime), XNNPACK when asked"),
    "tensorrt": ((".engine", ".plan"), "TensorRT engine (Python API, CUDA buffers)"),
    "torch": ((".safetensors",), "PyTorch eager, CPU"),
    "torch-cuda-fp16": ((".safetensors",), "PyTorch eager, CUDA, FP16 weights and activations"),
}
_ORT_PROVIDERS = {
    "onnxruntime": ["CPUExecutionProvider"],
    "onnxruntime-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnxruntime-tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (not installed, no GPU, wrong artifact type)."""


def default_runtime(artifact: str | Path) -> str:
    suffix = Path(artifact).suffix
    for name, (suffixes, _) in RUNTIMES.items():
        if suffix in suffixes:
            return name
    raise RuntimeUnavailable(f"{artifact}: no runtime runs {suffix or 'extensionless'} files; "
                             f"known: {', '.join(sorted({s for v in RUNTIMES.values() for s in v[0]}))}")


def runs(runtime: str, artifact: str | Path) -> bool:
    return runtime in RUNTIMES and Path(artifact).suffix in RUNTIMES[runtime][0]


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
        raise RuntimeUnavailable(f"{artifact}: {runtime} runs {', '.join(RUNTIMES[runtime][0])} files")
    if runtime.startswith("onnxruntime"):
        from .ort import OrtSession

        return OrtSession(artifact, threads=threads, providers=_ORT_PROVIDERS[runtime], require_all=True)
    if runtime == "litert":
        from .litert import LiteRTSession

        return LiteRTSession(artifact, threads=threads, xnnpack=xnnpack)
    if runtime == "tensorrt":
        from .tensorrt import TensorRTSession

        return TensorRTSession(artifact)
    from .torch_eager import TorchSession

    return TorchSession(artifact, threads=threads, cuda_fp16=runtime == "torch-cuda-fp16")
