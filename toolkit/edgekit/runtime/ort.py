"""ONNX Runtime sessions with explicit threads and spinning off (stable latency on shared machines)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import Runtime, RuntimeUnavailable, register

PROVIDERS = {
    "onnxruntime": ["CPUExecutionProvider"],
    "onnxruntime-cuda": ["CUDAExecutionProvider", "CPUExecutionProvider"],
    "onnxruntime-tensorrt": ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
}


def session(path: str | Path, runtime: str, threads: int | None, xnnpack: bool) -> OrtSession:
    return OrtSession(path, threads=threads, providers=PROVIDERS[runtime], require_all=True)


def _row(name: str, gpu: bool, description: str, symmetric_int8: bool = False) -> Runtime:
    return Runtime(name, "onnxruntime", "onnx", (".onnx",), gpu, ("onnxruntime",), ("onnxruntime",), session,
                   description, symmetric_int8=symmetric_int8)


register(_row("onnxruntime", False, "ONNX Runtime, CPU execution provider"),
         _row("onnxruntime-cuda", True, "ONNX Runtime, CUDA execution provider"),
         _row("onnxruntime-tensorrt", True, "ONNX Runtime, TensorRT execution provider", symmetric_int8=True))


class OrtSession:
    def __init__(self, path: str | Path, threads: int | None = 1, providers: list[str] | None = None,
                 require_all: bool = False):
        import onnxruntime as ort

        providers = providers or ["CPUExecutionProvider"]
        if require_all:
            missing = [p for p in providers if p not in ort.get_available_providers()]
            if missing:
                raise RuntimeUnavailable(f"onnxruntime {ort.__version__} here lacks {', '.join(missing)} "
                                         f"(has {', '.join(ort.get_available_providers())})")
        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
            opts.inter_op_num_threads = 1
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), opts, providers=providers)
        self.input_name = self.session.get_inputs()[0].name
        self.input_shape = list(self.session.get_inputs()[0].shape)
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {self.input_name: np.ascontiguousarray(batch, np.float32)})
