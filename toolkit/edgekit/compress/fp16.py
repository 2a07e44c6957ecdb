"""FP16 stage: convert the float ONNX model to half precision, keeping float32 inputs and outputs."""

from __future__ import annotations

from pathlib import Path

import onnx
from onnxruntime.transformers.float16 import convert_float_to_float16

from ..atomic import atomic_path
from ..config.recipe import Fp16Stage


def run_fp16(fp32_path: Path, cfg: Fp16Stage, out_dir: Path):
    out = out_dir / "model.fp16.onnx"
    model = convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=cfg.keep_io_types)
    with atomic_path(out) as tmp:
        onnx.save(model, str(tmp))
    return out, {"keep_io_types": cfg.keep_io_types}
