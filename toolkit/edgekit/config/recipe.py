"""Recipes: which stages take a teacher to a deployable model, with every knob typed and checked at load."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .yamlconf import load_yaml_model


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StudentSpec(Strict):
    """The student to distill into. With `init`, its weights (and arch and width) come from a checkpoint, so the
    distill stage fine-tunes instead of training from random weights."""

    arch: Literal["mobile", "resnet"] | None = None
    width: float | None = Field(None, gt=0.0, le=2.0)
    init: str | None = Field(None, min_length=1, description="zoo:NAME or a .safetensors checkpoint to start from")

    @model_validator(mode="before")
    @classmethod
    def _defaults_without_init(cls, data):
        # Without init: a fresh mobile 0.5. With init, the checkpoint decides; given values must agree with it.
        if isinstance(data, dict) and data.get("init") is None:
            data = {"arch": "mobile", "width": 0.5, **{k: v for k, v in data.items() if v is not None}}
        return data


class DataSpec(Strict):
    """`--data` forms (see edgekit.data.datasets). Unlabeled train data is distilled with teacher pseudo-labels."""

    train: str = "synth:train"
    val: str = "synth:val:300"
    eval: str = "synth:test:500"
    calibration: str = "synth:train:512"


class TrainSpec(Strict):
    epochs: int = Field(4, ge=1, le=1000)
    steps_per_epoch: int = Field(100, ge=1)
    batch_size: int = Field(64, ge=1, le=4096)
    lr: float = Field(2e-3, gt=0.0, le=1.0)
    patience: int = Field(4, ge=1)


class DistillLoss(Strict):
    landmarks: Literal["wing", "l1"] = "wing"
    ground_truth: float = Field(0.5, ge=0.0, description="weight of the ground-truth landmark term, if labeled")
    states: float = Field(1.0, ge=0.0, description="weight of the temperature-scaled state KL")
    temperature: float = Field(2.0, gt=0.0)
    features: float = Field(0.0, ge=0.0, description="weight of the feature loss through 1x1 adapters; 0 = off")


class DistillStage(TrainSpec):
    loss: DistillLoss = DistillLoss()
    # Images whose teacher outputs are computed once and reused over epochs (with flips); 0 = a live teacher on
    # fresh data every step. A pool roughly doubles student steps per minute for a heavy teacher.
    pool: int = Field(0, ge=0, le=1_000_000)


class PruneTarget(Strict):
    macs_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="MACs kept, e.g. 0.5")
    channel_ratio: float | None = Field(None, gt=0.0, lt=1.0, description="channels kept, e.g. 0.6")

    @model_validator(mode="after")
    def _exactly_one(self):
        if (self.macs_ratio is None) == (self.channel_ratio is None):
            raise ValueError("give exactly one of macs_ratio or channel_ratio")
        return self


class PruneStage(Strict):
    importance: Literal["l1", "l2", "bn_scale", "taylor"] = "l2"
    target: PruneTarget
    steps: int = Field(3, ge=1, le=50, description="iterative pruning steps, KD fine-tuning between them")
    channel_multiple: int | None = Field(None, ge=1, le=128, description="default: the target's")
    finetune: TrainSpec = TrainSpec(epochs=1, steps_per_epoch=40, lr=1e-3)
    loss: DistillLoss = DistillLoss()


class Calibration(Strict):
    images: int = Field(256, ge=1)
    method: Literal["minmax", "entropy", "percentile"] = "percentile"
    percentile: float = Field(99.999, gt=90.0, le=100.0)


class Fallback(Strict):
    # Relative NME budget of INT8 (0.05 = +5%). Bring-your-own models: absolute fidelity error to the original.
    max_nme_increase: float = Field(0.05, ge=0.0)
    max_float_layers: int = Field(20, ge=0)


class QuantizeStage(Strict):
    mode: Literal["ptq", "qat"] = "ptq"
    calibration: Calibration = Calibration()
    per_channel: bool = True
    symmetric_activations: bool | Literal["auto"] = "auto"  # auto: symmetric when a target runs TensorRT
    reduce_range: bool = False  # 7-bit weights, for x86 CPUs without VNNI (ONNX Runtime's guidance)
    fallback: Fallback | None = Fallback()
    qat: TrainSpec = TrainSpec(epochs=2, steps_per_epoch=40, lr=2e-4)


class Fp16Stage(Strict):
    keep_io_types: bool = True


class StageItem(Strict):
    distill: DistillStage | None = None
    prune: PruneStage | None = None
    quantize: QuantizeStage | None = None
    fp16: Fp16Stage | None = None

    @model_validator(mode="after")
    def _one(self):
        set_ = [k for k in ("distill", "prune", "quantize", "fp16") if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError("each stage is one of distill, prune, quantize, fp16")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("distill", "prune", "quantize", "fp16") if getattr(self, k) is not None)

    @property
    def config(self) -> Strict:
        return getattr(self, self.kind)


class Accept(Strict):
    """What the compressed model must reach. `edgekit compress` still writes everything when a budget is missed,
    then exits 1 with one line naming it."""

    max_nme_ratio: float | None = Field(None, gt=0, description="final NME / teacher NME on the eval data")
    max_nme: float | None = Field(None, gt=0, description="absolute final NME (0.03 = 3%)")
    max_export_nme_increase: float | None = Field(
        None, ge=0, description="relative NME rise of an FP16/INT8 artifact over its float model at export; default: "
                                "the quantize stage's fallback budget, else 0.05")


class Recipe(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    teacher: str = "zoo:facial68-teacher"
    student: StudentSpec | None = None
    data: DataSpec = DataSpec()
    stages: list[StageItem] = Field(min_length=1)
    exports: Literal["from-target"] = "from-target"
    accept: Accept = Accept()

    @property
    def _fallback(self) -> Fallback:
        """The quantize stage's fallback settings, or the defaults when the recipe does not quantize."""
        q = next((s.quantize for s in self.stages if s.quantize is not None), None)
        return q.fallback if q is not None and q.fallback is not None else Fallback()

    @property
    def export_nme_budget(self) -> float:
        if self.accept.max_export_nme_increase is not None:
            return self.accept.max_export_nme_increase
        return self._fallback.max_nme_increase

    @property
    def max_float_layers(self) -> int:
        return self._fallback.max_float_layers

    @model_validator(mode="after")
    def _coherent(self):
        kinds = [s.kind for s in self.stages]
        if "distill" in kinds and self.student is None:
            raise ValueError("a distill stage needs a student: {arch, width}")
        for k in set(kinds):
            if kinds.count(k) > 1:
                raise ValueError(f"stage {k!r} appears more than once")
        final = [k for k in kinds if k in ("quantize", "fp16")]
        if len(final) > 1 or (final and kinds[-1] != final[0]):
            raise ValueError("quantize or fp16 must be the last stage, and only one of them")
        return self


def load_recipe(path: str | Path) -> Recipe:
    return load_yaml_model(path, Recipe)
