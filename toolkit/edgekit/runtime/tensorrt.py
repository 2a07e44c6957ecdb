"""TensorRT engine sessions through the TensorRT 10 Python API, with CUDA buffers from cuda-python.

Numpy, tensorrt and cuda-python only (no torch): this runs on Jetson images that have just those. Tests that
need it skip where `tensorrt` cannot be imported or no GPU is present.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .registry import Runtime, register


def _cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        from cuda import cudart  # older cuda-python
    return cudart


def _check(result):
    err, *rest = result if isinstance(result, tuple) else (result,)
    if int(err) != 0:
        raise RuntimeError(f"CUDA error {err}")
    return rest[0] if len(rest) == 1 else rest


def session(path: str | Path, runtime: str, threads: int | None, xnnpack: bool) -> TensorRTSession:
    return TensorRTSession(path)


register(Runtime("tensorrt", "tensorrt", "tensorrt", (".engine", ".plan"), True, ("tensorrt",), ("tensorrt",),
                 session, "TensorRT engine (Python API, CUDA buffers)", symmetric_int8=True))


class TensorRTSession:
    def __init__(self, path: str | Path):
        import tensorrt as trt

        self.trt, self.cudart = trt, _cudart()
        logger = trt.Logger(trt.Logger.WARNING)
        self.engine = trt.Runtime(logger).deserialize_cuda_engine(Path(path).read_bytes())
        if self.engine is None:
            raise RuntimeError(f"{path}: TensorRT could not deserialize the engine (built for another GPU or version?)")
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.input_name = next(n for n in names if self.engine.get_tensor_mode(n) == mode)
        self.output_names = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self.input_shape = list(self.engine.get_tensor_shape(self.input_name))
        self.stream = _check(self.cudart.cudaStreamCreate())
        self._buffers: dict[str, tuple[int, int]] = {}  # name -> (device pointer, bytes)

    def _device(self, name: str, nbytes: int) -> int:
        ptr, size = self._buffers.get(name, (0, 0))
        if size < nbytes:
            if ptr:
                _check(self.cudart.cudaFree(ptr))
            ptr = _check(self.cudart.cudaMalloc(nbytes))
            self._buffers[name] = (ptr, nbytes)
        self.context.set_tensor_address(name, ptr)
        return ptr

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        cudart, kind = self.cudart, self.cudart.cudaMemcpyKind
        x = np.ascontiguousarray(batch, np.float32)
        self.context.set_input_shape(self.input_name, x.shape)
        ptr = self._device(self.input_name, x.nbytes)
        _check(cudart.cudaMemcpyAsync(ptr, x.ctypes.data, x.nbytes, kind.cudaMemcpyHostToDevice, self.stream))
        outs = []
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(self.trt.nptype(self.engine.get_tensor_dtype(name)))
            host = np.empty(shape, dtype)
            self._device(name, host.nbytes)
            outs.append(host)
        if not self.context.execute_async_v3(self.stream):
            raise RuntimeError("TensorRT execution failed")
        for name, host in zip(self.output_names, outs, strict=True):
            _check(cudart.cudaMemcpyAsync(host.ctypes.data, self._buffers[name][0], host.nbytes,
                                          kind.cudaMemcpyDeviceToHost, self.stream))
        _check(cudart.cudaStreamSynchronize(self.stream))
        return [o.astype(np.float32, copy=False) for o in outs]

    def __del__(self):
        for ptr, _ in getattr(self, "_buffers", {}).values():
            self.cudart.cudaFree(ptr)
