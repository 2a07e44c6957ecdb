"""prune: structured pruning with torch-pruning to a MACs, channel or latency target, KD fine-tuning between steps."""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

from pydantic import Field, field_validator, model_validator

from ...config.base import DistillLoss, Strict, TrainSpec
from ..importance import criterion
from ..stage import ModelState, Stage, StageReport, model_output

if TYPE_CHECKING:
    from ..context import StageContext


class PruneTarget(Strict):
    macs_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="MACs kept, e.g. 0.5")
    channel_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="channels kept, e.g. 0.6")
    latency_ms: float | None = Field(None, gt=0.0, description="p50 measured here: ONNX Runtime, FP32, batch 1, "
                                                              "1 thread (the latency table)")

    @model_validator(mode="after")
    def _exactly_one(self):
        if sum(v is not None for v in (self.macs_ratio, self.channel_ratio, self.latency_ms)) != 1:
            raise ValueError("give exactly one of macs_ratio, channel_ratio or latency_ms")
        return self


class PruneConfig(Strict):
    importance: str = Field("l2", description="channel importance (compress/importance.py): l1, l2, bn_scale, taylor")
    target: PruneTarget
    steps: int = Field(3, ge=1, le=50, description="iterative pruning steps, KD fine-tuning between them")
    channel_multiple: int | None = Field(None, ge=1, le=128, description="default: the target's")
    max_step_cut: float = Field(0.5, gt=0.0, le=1.0, description="the largest share of a group's channels one "
                                                                 "step's group-by-group trim may remove")
    finetune: TrainSpec = TrainSpec(epochs=1, steps_per_epoch=40, lr=1e-3)
    loss: DistillLoss = DistillLoss()

    @field_validator("importance")
    @classmethod
    def _known(cls, v: str) -> str:
        criterion(v)  # ValueError naming the registered criteria
        return v


class Prune(Stage):
    kind = "prune"
    Config = PruneConfig
    summary = ("remove channels (torch-pruning) down to a MACs ratio, channel ratio or measured latency, "
               "fine-tuning by KD from the input")
    order = 20

    def label(self) -> str:
        return "pruned"

    def key_inputs(self, ctx: StageContext) -> dict:
        return {"multiple": ctx.channel_multiple}  # the targets' channel rounding

    def trains_input(self) -> bool:
        return True

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        from ..prune import run_prune

        # A copy: the input may be the frozen teacher that the context still uses as reference.
        model, extra = run_prune(copy.deepcopy(state.module), self.config, ctx)
        return model_output(model, {**state.arch, "pruned": True}, ctx, self.label(), extra)
