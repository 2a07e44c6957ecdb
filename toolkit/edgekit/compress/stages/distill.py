"""distill: train a student from the teacher's outputs (and labels when the data has them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field

from ...config.base import DistillLoss, TrainSpec
from ..stage import ModelState, Stage, StageReport, model_output

if TYPE_CHECKING:
    from ..context import StageContext


class DistillConfig(TrainSpec):
    loss: DistillLoss = DistillLoss()
    # Images whose teacher outputs are computed once and reused over epochs (with flips); 0 = a live teacher on
    # fresh data every step. A pool roughly doubles student steps per minute for a heavy teacher.
    pool: int = Field(0, ge=0, le=1_000_000)
    # More than flips for a pool's images, drawn per (epoch, image): "warp" a small random similarity of image and
    # target points together (exact for points; the states keep), "photometric" brightness/contrast/colour
    # jitter. The targets stay the teacher's outputs on the unaugmented image.
    pool_augment: list[Literal["warp", "photometric"]] = Field(default_factory=list)


class Distill(Stage):
    kind = "distill"
    Config = DistillConfig
    summary = "train the recipe's student (fresh or from `student.init`) against the teacher"
    order = 10
    needs_student = True

    def label(self) -> str:
        return "student"

    def trains(self) -> bool:
        return True

    def makes_new_model(self) -> bool:
        return True  # the student; later stages and the exports work on it, not on the input

    def key_inputs(self, ctx: StageContext) -> dict:
        from ...hashing import sha256_file
        from ...models.checkpoint import resolve

        s = ctx.student
        # A re-published zoo student (same name, new weights) must not reuse a cached distill stage.
        return {"student": s.model_dump() if s else None,
                "student_init": sha256_file(resolve(s.init)) if s is not None and s.init else None}

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        from ..distill import run_distill

        model, arch, extra = run_distill(self.config, ctx.student, ctx)
        return model_output(model, {**arch, "pruned": False}, ctx, self.label(), extra)
