"""Task metrics of a model, or of an ONNX file, on the recipe's splits; and the NME budget an INT8 model gets."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from torch import nn

from .. import metrics
from ..errors import EdgekitError
from .model_view import CanonicalView, run_callable, run_outputs
from .stage_data import StageData

log = logging.getLogger(__name__)


class Scorer:
    def __init__(self, data: StageData):
        self.data, self.contract = data, data.contract
        self._missing: set[str] = set()

    def score(self, model, spec: str) -> dict:
        """Task metrics of a torch model, or of any callable mapping a normalised batch to its outputs: landmark
        metrics in the scheme (against labels, or the teacher), states when both sides have them, and each
        other output's error against the teacher's (fidelity)."""
        a = self.data.arrays(spec)
        model = model.model if isinstance(model, CanonicalView) else model
        got = run_outputs(model, a["x"]) if isinstance(model, nn.Module) else run_callable(model, a["x"])
        c = self.contract
        out: dict = {}
        if c.landmark_index is not None and a["landmarks"] is not None:
            st = got[c.state_index] if c.state_index is not None and a["states"] is not None else None
            out = metrics.evaluate(np.asarray(c.decode(got)), a["landmarks"], st, a["states"], scheme=c.scheme,
                                   attributes=a.get("attributes"))
        fidelity = {}
        for i in c.other_indices:
            ref, val = a["reference"][i], np.asarray(got[i]).reshape(a["reference"][i].shape)
            err = np.abs(val.astype(np.float64) - ref)
            fidelity[c.names[i]] = {"max_abs": float(err.max()), "mean_abs": float(err.mean()),
                                    "relative": float(err.mean() / max(np.abs(ref).mean(), 1e-12))}
        if fidelity:
            out["outputs"] = fidelity
        if "nme" not in out:  # no landmark output: what early stopping and the INT8 budget minimise
            out["n"] = int(len(a["x"]))
            out["nme"] = float(np.mean([f["relative"] for f in fidelity.values()])) if fidelity else 0.0
        return out

    def score_onnx(self, path: Path, spec: str | None = None) -> dict:
        """Task metrics of an ONNX file through ONNX Runtime, on `spec`; by default as `evaluate` reports them (the
        evaluation split, and the recipe's real faces)."""
        from ..runtime.ort import OrtSession

        run = OrtSession(path, threads=None).run
        return self.score(run, spec) if spec else self.evaluate(run)

    def validate(self, model) -> dict:
        """Metrics on the validation split: against labels, or against the teacher when unlabeled."""
        return self.score(model, self.data.val)

    def evaluate(self, model) -> dict:
        """Metrics on the evaluation split (reported in the stage table), and NME on each real set of the recipe's
        `data.real` that opens here."""
        out = self.score(model, self.data.eval)
        real = {}
        for spec in self.data.spec.real:
            try:
                real[spec] = self.score(model, spec)["nme"]
            except EdgekitError as exc:  # not fetched or not installed here: say so once, go on
                if spec not in self._missing:
                    self._missing.add(spec)
                    log.warning("data.real %s left out: %s", spec, exc)
        if real:
            out["real_nme"] = real
        return out

    def labeled(self) -> bool:
        """Does the evaluation split have labels in the model's scheme (else scores are fidelity to the teacher)?"""
        return True

    def nme_budget(self, float_nme: float, max_increase: float) -> float:
        """The INT8 NME allowed: relative to the float model's NME."""
        return float_nme * (1.0 + max_increase)
