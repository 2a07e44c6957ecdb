"""Config pieces shared by the recipe, the targets and the stages' own configs (kept apart to avoid a cycle:
the recipe reads the stage registry, and stages build their configs from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


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
    outputs: float = Field(1.0, ge=0.0, description="weight of the other outputs' MSE (a user model's box, "
                           "probabilities...), relative to the teacher's energy")


class Fallback(Strict):
    """Float fallback of INT8: keep the most sensitive layers float until the NME budget holds."""

    # Relative NME budget of INT8 (0.05 = +5%). Your own model on unlabeled data: landmark NME against the
    # original model, absolute (0.01 = 1% of the normalising distance), or the other outputs' relative error.
    max_nme_increase: float = Field(0.05, ge=0.0)
    max_float_layers: int = Field(20, ge=0)
    # Layers with more weights than this stay INT8 whatever their sensitivity: a big float layer (a student's
    # landmark FC) would undo most of INT8's size saving. None: no limit.
    max_float_params: int | None = Field(None, ge=0)
