"""fp16: the float ONNX model in half precision (for GPUs), keeping float32 inputs and outputs."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from ...config.base import Strict
from ..stage import ModelState, Stage, StageReport

if TYPE_CHECKING:
    from ..context import StageContext


class Fp16Config(Strict):
    keep_io_types: bool = True


class Fp16(Stage):
    kind = "fp16"
    Config = Fp16Config
    summary = "convert the float ONNX model to FP16 (onnxruntime's converter)"
    order = 40
    final = True
    any_model = True

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        from ...convert.fp16 import onnx_to_fp16

        fp32 = ctx.files.export_onnx(state.module, ctx.files.dir / "model.fp32.onnx")
        out = onnx_to_fp16(fp32, ctx.files.dir / "model.fp16.onnx", keep_io_types=self.config.keep_io_types)
        return replace(state), StageReport(name=self.label(), artifact=out, metrics=ctx.scoring.score_onnx(out),
                                           precision="fp16", extra={"keep_io_types": self.config.keep_io_types})
