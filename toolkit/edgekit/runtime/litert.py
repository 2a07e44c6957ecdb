"""LiteRT (TFLite) sessions: ai-edge-litert's Interpreter, or tflite_runtime on devices pinned to it.

Full-integer models take and give int8 tensors; the session quantizes float inputs and dequantizes outputs
with the scale and zero-point the model declares, so callers always see float32 like every other runtime.
Numpy and the interpreter only: this runs on the device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import Runtime, register


def interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # devices pinned to the old runtime
        except ImportError as exc:
            raise ImportError("no TFLite interpreter: pip install ai-edge-litert (or tflite-runtime)") from exc
    return Interpreter


def quantize(x: np.ndarray, scale: float, zero_point: int, dtype) -> np.ndarray:
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    return (q.astype(np.float32) - zero_point) * scale


def session(path: str | Path, runtime: str, threads: int | None, xnnpack: bool) -> LiteRTSession:
    return LiteRTSession(path, threads=threads, xnnpack=xnnpack)


register(Runtime("litert", "litert", "tflite", (".tflite",), False,
                 ("ai_edge_litert.interpreter", "tflite_runtime.interpreter"), ("ai-edge-litert", "tflite-runtime"),
                 session, "LiteRT (ai-edge-litert, or tflite_runtime), XNNPACK when asked"))


class LiteRTSession:
    def __init__(self, path: str | Path, threads: int | None = 1, xnnpack: bool = True):
        cls = interpreter_class()
        kwargs = {"num_threads": threads} if threads else {}
        if not xnnpack:
            try:
                from ai_edge_litert.interpreter import OpResolverType

                kwargs["experimental_op_resolver_type"] = OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
            except ImportError:
                pass
        self.interpreter = cls(model_path=str(path), **kwargs)
        self.interpreter.allocate_tensors()
        self.inp = self.interpreter.get_input_details()[0]
        self.outs = _outputs_in_signature_order(self.interpreter)
        self.batch = int(self.inp["shape"][0])
        self.input_shape = [int(v) for v in self.inp["shape"]]
        self.output_names = [o["name"] for o in self.outs]

    def _run_one(self, x: np.ndarray) -> list[np.ndarray]:
        it, inp = self.interpreter, self.inp
        if inp["dtype"] != np.float32:
            scale, zp = inp["quantization"]
            x = quantize(x, scale, zp, inp["dtype"])
        it.set_tensor(inp["index"], np.ascontiguousarray(x))
        it.invoke()
        out = []
        for o in self.outs:
            y = it.get_tensor(o["index"])
            if o["dtype"] != np.float32:
                y = dequantize(y, *o["quantization"])
            out.append(y)
        return out

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """Float32 NCHW in, float32 outputs out; batches larger than the model's are run in chunks."""
        batch = np.asarray(batch, np.float32)
        if len(batch) == self.batch:
            return self._run_one(batch)
        parts = [self._run_one(batch[i:i + self.batch]) for i in range(0, len(batch), self.batch)]
        return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _outputs_in_signature_order(interpreter) -> list[dict]:
    """litert-torch names outputs output_0, output_1, ... in the PyTorch order; tensor order is not a promise."""
    details = interpreter.get_output_details()
    try:
        sigs = interpreter._get_full_signature_list()  # noqa: SLF001 - the only way to map names to tensors
        mapping = next(iter(sigs.values()))["outputs"]
    except (AttributeError, StopIteration, KeyError):
        return details

    def order(name: str):
        tail = name.rsplit("_", 1)[-1]
        return (0, int(tail), name) if tail.isdigit() else (1, 0, name)

    by_index = {d["index"]: d for d in details}
    ordered = [by_index[mapping[k]] for k in sorted(mapping, key=order) if mapping[k] in by_index]
    return ordered if len(ordered) == len(details) else details
