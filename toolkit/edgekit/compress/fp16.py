"""FP16 stage: convert the float ONNX model to half precision, keeping float32 inputs and outputs."""

from __future__ import annotations

from pathlib import Path

from ..config.recipe import Fp16Stage
from ..convert.fp16 import onnx_to_fp16


def run_fp16(fp32_path: Path, cfg: Fp16Stage, out_dir: Path):
    out = onnx_to_fp16(fp32_path, out_dir / "model.fp16.onnx", keep_io_types=cfg.keep_io_types)
    return out, {"keep_io_types": cfg.keep_io_types}
