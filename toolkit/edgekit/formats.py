"""The one table of artifact formats and the runtimes that run them.

Export names its files from it, the runtime layer loads through it, bench maps files and target runtimes to
cells with it, and the target schema takes its names from it. Modelled on Ultralytics' single export-format
table (format, suffix, CPU/GPU): adding a format or a runtime is one row here plus its loader.

Standard library only: the device-side bench runner imports this through `edgekit.runtime`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("fp32", "fp16", "int8")


@dataclass(frozen=True)
class Format:
    name: str
    suffixes: tuple[str, ...]  # the first is what export writes
    precisions: tuple[str, ...]  # what export can write in this format
    exported: bool  # written by the export phase for targets (pytorch is the training checkpoint)
    description: str

    def filename(self, precision: str) -> str:
        return f"model.{precision}{self.suffixes[0]}"


@dataclass(frozen=True)
class Runtime:
    name: str  # concrete runtime, as a bench cell and `edgekit.runtime.load` name it
    family: str  # the name a target file uses; GPU targets get the family's gpu row
    format: str
    gpu: bool
    modules: tuple[str, ...]  # any one of these importable means the runtime is installed
    loader: str  # "module:function(path, runtime, threads, xnnpack) -> session"
    description: str


FORMATS: dict[str, Format] = {f.name: f for f in (
    Format("onnx", (".onnx",), PRECISIONS, True, "ONNX (QDQ for INT8)"),
    Format("tflite", (".tflite",), PRECISIONS, True, "TFLite flatbuffer (LiteRT)"),
    Format("tensorrt", (".engine", ".plan"), ("fp32", "fp16", "int8"), True, "TensorRT engine (built per GPU)"),
    Format("pytorch", (".safetensors",), ("fp32", "fp16"), False, "edgekit checkpoint (safetensors + JSON)"),
)}

RUNTIMES: dict[str, Runtime] = {r.name: r for r in (
    Runtime("onnxruntime", "onnxruntime", "onnx", False, ("onnxruntime",), "edgekit.runtime.ort:session",
            "ONNX Runtime, CPU execution provider"),
    Runtime("onnxruntime-cuda", "onnxruntime", "onnx", True, ("onnxruntime",), "edgekit.runtime.ort:session",
            "ONNX Runtime, CUDA execution provider"),
    Runtime("onnxruntime-tensorrt", "onnxruntime", "onnx", True, ("onnxruntime",),
            "edgekit.runtime.ort:session", "ONNX Runtime, TensorRT execution provider"),
    Runtime("litert", "litert", "tflite", False, ("ai_edge_litert", "tflite_runtime"),
            "edgekit.runtime.litert:session", "LiteRT (ai-edge-litert, or tflite_runtime), XNNPACK when asked"),
    Runtime("tensorrt", "tensorrt", "tensorrt", True, ("tensorrt",), "edgekit.runtime.tensorrt:session",
            "TensorRT engine (Python API, CUDA buffers)"),
    Runtime("torch", "torch", "pytorch", False, ("torch",), "edgekit.runtime.torch_eager:session",
            "PyTorch eager, CPU"),
    Runtime("torch-cuda-fp16", "torch", "pytorch", True, ("torch",), "edgekit.runtime.torch_eager:session",
            "PyTorch eager, CUDA, FP16 weights and activations"),
)}

# Names a target file may use: runtime families and exported formats.
TARGET_RUNTIMES = tuple(dict.fromkeys(r.family for r in RUNTIMES.values() if r.name == r.family))
TARGET_FORMATS = tuple(f.name for f in FORMATS.values() if f.exported)


def format_of(path: str | Path) -> str | None:
    """The format a file's suffix says, or None."""
    suffix = Path(path).suffix
    return next((f.name for f in FORMATS.values() if suffix in f.suffixes), None)


def runs(runtime: str, path: str | Path) -> bool:
    return runtime in RUNTIMES and format_of(path) == RUNTIMES[runtime].format


def runtime_for(family: str, gpu: bool) -> str:
    """A target's runtime name -> the concrete runtime on that hardware (GPU targets use the CUDA rows)."""
    rows = [r for r in RUNTIMES.values() if r.family == family]
    return next((r.name for r in rows if r.gpu == gpu), rows[0].name if rows else family)


def default_runtime(path: str | Path) -> str | None:
    """The CPU runtime for a file (the first row of its format), or None."""
    fmt = format_of(path)
    rows = [r for r in RUNTIMES.values() if r.format == fmt]
    return next((r.name for r in rows if not r.gpu), rows[0].name if rows else None)


def precision_in_name(path: str | Path) -> str:
    """`model.int8.onnx` -> int8: the precision a file name says (fp32 when it says none). A fallback only;
    edgekit reads the precision from the graph where it can (bench.precision)."""
    return next((p for p in Path(path).name.split(".") if p in PRECISIONS), "fp32")


def loader(runtime: str):
    module, func = RUNTIMES[runtime].loader.split(":")
    return getattr(importlib.import_module(module), func)


def known_suffixes() -> list[str]:
    return sorted({s for f in FORMATS.values() for s in f.suffixes})
