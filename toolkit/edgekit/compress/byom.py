"""Your own model in the pipeline: its output contract, its data, and what quality means without labels.

The stage context does the work (see `StageData.arrays` and `Scorer.score`): landmarks are read through the model's
`OutputContract` and scored in its scheme, against labels of that scheme when the data has them, else against the
original model; every other output is scored as fidelity to the original.
"""

from __future__ import annotations

import torch

from ..errors import EdgekitError
from ..models.byom import ByomModel, ByomSpec
from .context import StageContext
from .scoring import Scorer
from .stage_data import StageData

__all__ = ["ByomContext", "ByomSpec", "FIDELITY_BUDGET"]

# The data that trains holds out its last VAL_SHARE of images (sorted names; at most HELD_IMAGES, at least one):
# validation (the epoch is picked on it) and, without --eval-data, the reported figures read only those, so no
# figure is measured on images the student trained on. Calibration fits ranges and learns nothing: it reads the
# first HELD_IMAGES images, held out or not.
VAL_SHARE = 0.1
HELD_IMAGES = 1000
# Unlabeled data: an INT8 or FP16 model may move landmarks by at most 1% of the normalising distance against
# the float model (or the other outputs by 1% relative error), unless the recipe sets its own budget.
FIDELITY_BUDGET = 0.01


class ByomData(StageData):
    def augmentation(self) -> dict:
        """Your model teaches on exactly what the student sees, so geometric augmentation costs no label accuracy:
        flips (the scheme's pairs), a small random similarity, and photometric jitter."""
        return {**super().augmentation(), "warp": True}

    @staticmethod
    def held_out(n: int) -> int:
        """How many of the training data's `n` images are held out (its last ones)."""
        return min(HELD_IMAGES, max(1, round(n * VAL_SHARE))) if n > 1 else 0

    def training_part(self, ds):
        return torch.utils.data.Subset(ds, range(len(ds) - self.held_out(len(ds))))

    def scoring_part(self, spec: str, ds, calibration: bool = False):
        if calibration:
            return torch.utils.data.Subset(ds, range(min(len(ds), HELD_IMAGES)))
        if spec != self.train:
            return ds
        return torch.utils.data.Subset(ds, range(len(ds) - self.held_out(len(ds)), len(ds)))


class ByomScorer(Scorer):
    def labeled(self) -> bool:
        return bool(self.data.arrays(self.data.eval)["labeled"])

    def nme_budget(self, float_nme: float, max_increase: float) -> float:
        """With labels in the model's scheme, relative (as for edgekit's models). Without, NME is already
        against the original, so the budget is absolute: at most FIDELITY_BUDGET, or the recipe's smaller one."""
        if self.labeled():
            return super().nme_budget(float_nme, max_increase)
        return float_nme + min(max_increase, FIDELITY_BUDGET)


class ByomContext(StageContext):
    """StageContext whose teacher and reference is the user's model (ONNX Runtime for an ONNX file)."""

    Data = ByomData
    Scoring = ByomScorer

    def __init__(self, model: ByomModel, **kw):
        self.byom = model
        if model.input_shape[2] != model.input_shape[3]:
            raise EdgekitError(f"--model input is {model.input_shape[2]}x{model.input_shape[3]}; edgekit's face "
                               "crops are square")
        super().__init__(teacher=model.reference, contract=model.contract, input_shape=(1, *model.input_shape[1:]),
                         **kw)
