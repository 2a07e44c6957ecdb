"""quantize: INT8 through ONNX Runtime (PTQ, or QAT then PTQ), with float fallback by accuracy."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ...config.base import Fallback, Strict, TrainSpec
from ..stage import ModelState, Stage, StageReport

if TYPE_CHECKING:
    from ..context import StageContext
    from ..quantize import QuantScheme


class Calibration(Strict):
    images: int = Field(256, ge=1)
    method: Literal["minmax", "entropy", "percentile"] = "percentile"
    percentile: float = Field(99.999, gt=90.0, le=100.0)


class QuantizeConfig(Strict):
    mode: Literal["ptq", "qat"] = "ptq"
    calibration: Calibration = Calibration()
    per_channel: bool = True
    symmetric_activations: bool | Literal["auto"] = "auto"  # auto: symmetric when a target runs TensorRT
    reduce_range: bool = False  # 7-bit weights, for x86 CPUs without VNNI (ONNX Runtime's guidance)
    fallback: Fallback | None = Fallback()
    qat: TrainSpec = TrainSpec(epochs=2, steps_per_epoch=40, lr=2e-4)


class Quantize(Stage):
    kind = "quantize"
    Config = QuantizeConfig
    summary = "INT8 QDQ ONNX (PTQ or QAT), keeping the most sensitive layers float to meet the NME budget"
    order = 30
    final = True
    any_model = True

    def label(self) -> str:
        return f"int8 ({self.config.mode})"

    def scheme(self, ctx: StageContext) -> QuantScheme:
        from ..quantize import QuantScheme

        sym = self.config.symmetric_activations
        return QuantScheme(symmetric_activations=ctx.tensorrt if sym == "auto" else bool(sym),
                           reduce_range=self.config.reduce_range)

    def key_inputs(self, ctx: StageContext) -> dict:
        return {"scheme": self.scheme(ctx).__dict__}  # what the targets change: the INT8 scheme

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        from ..qat import run_qat
        from ..quantize import run_ptq

        fp32 = ctx.export_onnx(state.module, ctx.stage_dir / "model.fp32.onnx")
        if self.config.mode == "qat":
            artifact, extra = run_qat(state.module, self.config, self.scheme(ctx), ctx, ctx.stage_dir,
                                      ctx.onnx_metadata)
        else:
            artifact, extra = run_ptq(fp32, self.config, self.scheme(ctx), ctx, ctx.stage_dir)
        warnings = extra.pop("warnings", [])
        out = ModelState(module=state.module, arch=state.arch, float_onnx=fp32, int8_onnx=artifact,
                         checkpoint=state.checkpoint)
        return out, StageReport(name=self.label(), artifact=artifact, metrics=ctx.score_onnx(artifact),
                                precision="int8", extra=extra, warnings=warnings)
