"""PyTorch -> TFLite through litert-torch, with no TensorFlow: FP32, FP16 weights, and full-integer INT8.

- FP32: `litert_torch.convert`.
- FP16: FP16 weights via ai-edge-quantizer's float casting (XNNPACK runs them natively on ARM with FP16).
- INT8: PT2E static quantization (per-channel symmetric weights) calibrated on a representative dataset drawn
  from the calibration data; the converted model takes and returns int8 tensors, whose scale and zero-point go
  into the sidecar so runners quantize and dequantize correctly. Named modules may stay in float
  (`tflite_int8.py` chooses them by accuracy).
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..atomic import atomic_path
from ..formats import PRECISIONS


@contextlib.contextmanager
def _native_stderr_silenced():
    """The converter's C++ (absl) logging writes to file descriptor 2 directly, past Python's sys.stderr."""
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


@contextlib.contextmanager
def _quiet():
    """litert-torch and the MLIR converter print progress to stdout and absl logs; keep edgekit's output clean.
    A failure still raises its Python exception with the message."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), _native_stderr_silenced():
        warnings.simplefilter("ignore")
        previous = logging.root.manager.disable
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(previous)


def export_tflite(model: nn.Module, path: str | Path, input_shape: tuple[int, ...], precision: str = "fp32",
                  calibration: np.ndarray | None = None, float_modules: list[str] | tuple[str, ...] = ()) -> Path:
    """Write a TFLite model; `calibration` (N, C, H, W float32, normalised) is required for INT8, and
    `float_modules` (module names) stay in float in an INT8 model."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}")
    import litert_torch

    path = Path(path)
    model = model.eval()
    args = (torch.zeros(*input_shape),)
    with _quiet(), atomic_path(path) as tmp:
        if precision == "int8":
            if calibration is None or not len(calibration):
                raise ValueError("INT8 TFLite needs calibration images")
            from litert_torch.quantize.quant_config import QuantConfig

            from .tflite_int8 import fake_quantized, selective_quantizer

            quantizer = selective_quantizer(float_modules)
            graph = fake_quantized(model, input_shape, calibration, quantizer)
            litert_torch.convert(graph, args, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(tmp))
        else:
            litert_torch.convert(model, args).export(str(tmp))
            if precision == "fp16":
                _fp16_weights(tmp)
    return path


def _fp16_weights(path: Path) -> None:
    from ai_edge_quantizer import qtyping, quantizer
    from ai_edge_quantizer.recipe import AlgorithmName

    q = quantizer.Quantizer(str(path))
    q.add_weight_only_config(regex=".*", operation_name=qtyping.TFLOperationName.ALL_SUPPORTED, num_bits=16,
                             granularity=qtyping.QuantGranularity.TENSORWISE,
                             algorithm_key=AlgorithmName.FLOAT_CASTING)
    q.quantize().export_model(str(path), overwrite=True)


def io_details(path: str | Path) -> dict:
    """Input/output names, shapes, dtypes and int8 quantization parameters, for the sidecar."""
    from ..runtime.litert import LiteRTSession

    s = LiteRTSession(path, threads=1)

    def describe(d: dict) -> dict:
        scale, zero = d["quantization"]
        out = {"name": d["name"], "shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name}
        if np.dtype(d["dtype"]) != np.float32:
            out["quantization"] = {"scale": float(scale), "zero_point": int(zero)}
        return out

    return {"inputs": [describe(s.inp)], "outputs": [describe(o) for o in s.outs]}
