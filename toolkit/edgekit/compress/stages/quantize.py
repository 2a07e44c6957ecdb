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
    # The ONNX Runtime (asymmetric) model's form: QDQ pairs that ORT fuses at load, or QOperator's fused
    # QLinearConv/QGemm, or QOperator with the convs that read the 3-channel image left in float (ORT's int8
    # convolution is slow there). auto: all three are built and timed here (1 thread); the fastest is kept.
    ort_format: Literal["auto", "qdq", "qoperator", "qoperator-float-input"] = "auto"
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

    def trains_input(self) -> bool:
        return self.config.mode == "qat"  # PTQ works on the ONNX file; QAT fine-tunes the PyTorch model

    def schemes(self, ctx: StageContext) -> list[QuantScheme]:
        """One scheme per runtime the targets need (asymmetric first: the row's INT8 model), unless the recipe
        sets `symmetric_activations` to true or false, which forces one for all."""
        from ..quantize import QuantScheme

        sym = self.config.symmetric_activations
        tags = ctx.int8_schemes if sym == "auto" else ("sym" if sym else "asym",)
        return [QuantScheme(symmetric_activations=t == "sym", reduce_range=self.config.reduce_range) for t in tags]

    def key_inputs(self, ctx: StageContext) -> dict:
        return {"schemes": [s.__dict__ for s in self.schemes(ctx)]}  # what the targets change

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        from ..qat import run_qat
        from ..quantize import run_ptq

        fp32 = ctx.files.export_onnx(state.module, ctx.files.dir / "model.fp32.onnx")
        files, per_scheme, reports, source = {}, {}, [], fp32
        for i, scheme in enumerate(self.schemes(ctx)):
            if self.config.mode == "qat" and i == 0:  # train once; later schemes quantize the QAT-tuned weights
                artifact, report = run_qat(state.module, self.config, scheme, ctx, ctx.files.dir, ctx.onnx_metadata)
                source = report.qat.fp32_onnx
            else:
                artifact, report = run_ptq(source, self.config, scheme, ctx, ctx.files.dir)
            files[scheme.tag], reports = artifact, [*reports, report]
            per_scheme[scheme.tag] = {"val_nme_int8": report.val_nme_int8, "within_budget": report.within_budget,
                                      "float_layers": report.float_layers, "file": artifact.name}
        primary = next(iter(files.values()))
        extra = {**reports[0].to_json(), "schemes": per_scheme}  # the first scheme's figures are the row's
        warnings = reports[0].warnings
        out = ModelState(module=state.module, arch=state.arch, float_onnx=fp32, int8_onnx=files,
                         checkpoint=state.checkpoint)
        return out, StageReport(name=self.label(), artifact=primary, metrics=ctx.scoring.score_onnx(primary),
                                precision="int8", extra=extra, warnings=warnings)
