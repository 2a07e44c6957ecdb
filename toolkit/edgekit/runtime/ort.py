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
        first = self.input_shape[0] if self.input_shape else None
        self.fixed_batch = first if isinstance(first, int) and first > 0 else None

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Outputs for `batch`. Many exported models fix their batch (torch.onnx.export without dynamic axes makes
        it 1): such a model is fed in chunks of that size, the last one padded, instead of failing."""
        batch = np.ascontiguousarray(batch, np.float32)
        step = self.fixed_batch
        if step is None or len(batch) == step:
            return self.session.run(None, {self.input_name: batch})
        chunks = []
        for start in range(0, len(batch), step):
            part = batch[start:start + step]
            if len(part) < step:
                part = np.concatenate([part, np.zeros((step - len(part), *part.shape[1:]), np.float32)])
            chunks.append(self.session.run(None, {self.input_name: part}))
        return [np.concatenate([c[i] for c in chunks])[:len(batch)] for i in range(len(chunks[0]))]
