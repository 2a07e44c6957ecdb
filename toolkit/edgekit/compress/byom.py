"""Bring-your-own models in the pipeline: any outputs, no labels, quality measured as fidelity to the original.

The data is a folder of images (or any `--data` form); each is resized to the model's input and normalised with
the user's mean/std. The first part calibrates, the held-out rest measures fidelity, so the INT8 check is not
run on the images that set its ranges.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from .. import metrics
from ..errors import EdgekitError
from ..models.byom import ByomModel
from .context import StageContext


@dataclass
class ByomSpec:
    factory: str
    weights: str | None
    input_shape: tuple[int, ...]
    output_names: list[str] | None = None
    landmarks_output: str | None = None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)


def held_out(n: int) -> int:
    """How many images to hold out for fidelity: a fifth, at least 8, leaving at least 8 to calibrate."""
    if n < 16:
        raise EdgekitError(f"bring-your-own compression needs at least 16 images in --data, got {n}")
    return max(8, n // 5)


class ByomContext(StageContext):
    """StageContext whose reference is the original model and whose score is fidelity to it."""

    def __init__(self, model: ByomModel, spec: ByomSpec, data_spec: str, **kw):
        self.byom, self.spec, self.data_spec = model, spec, data_spec
        super().__init__(teacher=model.module, **kw)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, *self.byom.input_shape[1:])

    @property
    def output_names(self) -> list[str]:
        return list(self.byom.output_names)

    def _all(self) -> np.ndarray:
        if "all" not in self._cache:
            _, c, h, w = self.byom.input_shape
            if c != 3:
                raise EdgekitError(f"--input-shape has {c} channels; image data gives 3 (RGB)")
            ds = self.dataset(self.data_spec)
            imgs = np.stack([cv2.resize(ds[i].image, (w, h), interpolation=cv2.INTER_AREA) for i in range(len(ds))])
            x = (imgs.astype(np.float32) / 255.0 - np.asarray(self.spec.mean, np.float32)) / np.asarray(
                self.spec.std, np.float32)
            self._cache["all"] = np.ascontiguousarray(x.transpose(0, 3, 1, 2))
        return self._cache["all"]

    def arrays(self, spec: str) -> dict:
        key = ("arrays", spec)
        if key not in self._cache:
            x = self._all()
            k = held_out(len(x))
            x = x[: len(x) - k] if spec == self.data.calibration else x[len(x) - k:]
            self._cache[key] = {"x": x, "reference": _run_all(torch_predictor_all(self.byom.module), x)}
        return self._cache[key]

    def score(self, model, spec: str) -> dict:
        """Per-output max/mean abs error against the original; NME against its landmarks when declared.

        "nme" is what the fallback and early stopping minimise: that landmark NME when there is a landmark
        output, otherwise the mean abs error relative to the outputs' mean magnitude."""
        a = self.arrays(spec)
        run = torch_predictor_all(model) if isinstance(model, nn.Module) else model
        got = _run_all(run, a["x"])
        out = {"n": int(len(a["x"])), "outputs": {}}
        rel = []
        for name, ref, val in zip(self.output_names, a["reference"], got, strict=True):
            err = np.abs(val.astype(np.float64) - ref)
            out["outputs"][name] = {"max_abs": float(err.max()), "mean_abs": float(err.mean())}
            rel.append(err.mean() / max(np.abs(ref).mean(), 1e-12))
        out["relative_error"] = float(np.mean(rel))
        out["nme"] = out["relative_error"]
        if self.byom.landmarks_output:
            i = self.output_names.index(self.byom.landmarks_output)
            pred, ref = got[i].reshape(len(got[i]), 68, 2), a["reference"][i].reshape(len(got[i]), 68, 2)
            out["landmark_nme_vs_original"] = float(metrics.nme_per_image(pred, ref).mean())
            out["nme"] = out["landmark_nme_vs_original"]
        return out

    def evaluate(self, model) -> dict:
        return self.score(model, self.data.eval)

    def nme_budget(self, float_nme: float, max_increase: float) -> float:
        """Fidelity error is already relative to the original (whose own error is ~0), so the budget is absolute:
        max_nme_increase 0.05 allows 5% landmark NME (or relative output error) against the original."""
        return float_nme + max_increase


def torch_predictor_all(model: nn.Module):
    model.eval()

    @torch.no_grad()
    def run(x: np.ndarray):
        return [t.float().numpy() for t in model(torch.from_numpy(x))]

    return run


def _run_all(run, x: np.ndarray, batch: int = 32) -> list[np.ndarray]:
    parts = [run(x[i:i + batch]) for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]

