"""ONNX FP32 -> FP16 with onnxruntime's converter, keeping float32 inputs and outputs by default."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

from ..atomic import atomic_path


def onnx_to_fp16(fp32_path: Path, out: Path, keep_io_types: bool = True) -> Path:
    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=keep_io_types)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out
