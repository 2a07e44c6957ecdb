"""Run a model (PyTorch, or any callable on numpy batches) over a dataset and score it with edgekit.metrics."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..data.batches import loader
from ..data.transforms import DEFAULT_MEAN, DEFAULT_STD
from ..slices import concat_attributes

Predictor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # normalised NCHW -> (landmarks, states)


def torch_predictor(model: nn.Module) -> Predictor:
    model.eval()

    @torch.no_grad()
    def run(x: np.ndarray):
        lm, st = model(torch.from_numpy(x))
        return lm.float().numpy(), st.float().numpy()

    return run


def predict_arrays(run: Predictor, x: np.ndarray, batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
    """Run a predictor over already-normalised inputs in batches; landmarks come back as (N, P, 2)."""
    lms, sts = [], []
    for i in range(0, len(x), batch_size):
        lm, st = run(x[i:i + batch_size])
        lms.append(np.asarray(lm).reshape(len(lm), -1, 2))
        sts.append(np.asarray(st))
    return np.concatenate(lms), np.concatenate(sts)


def predict(model: nn.Module | Predictor, dataset, batch_size: int = 128, mean=DEFAULT_MEAN, std=DEFAULT_STD,
            attributes: dict | None = None):
    """Return (pred_landmarks, state_logits, gt_landmarks or None, gt_states or None) as numpy arrays; the images'
    attributes (robustness slices), when every batch has them, are put into `attributes`."""
    run = torch_predictor(model) if isinstance(model, nn.Module) else model
    out = {"lm": [], "st": [], "glm": [], "gst": []}
    attrs: list[dict | None] = []
    for b in loader(dataset, batch_size, mean=mean, std=std):
        attrs.append(b.attributes)
        lm, st = run(b.images.numpy())
        out["lm"].append(np.asarray(lm).reshape(len(lm), -1, 2))
        out["st"].append(np.asarray(st))
        if b.landmarks is not None:
            out["glm"].append(b.landmarks.numpy())
        if b.states is not None:
            out["gst"].append(b.states.numpy())
    cat = {k: (np.concatenate(v) if v else None) for k, v in out.items()}
    if attributes is not None:
        attributes.update(concat_attributes(attrs))
    return cat["lm"], cat["st"], cat["glm"], cat["gst"]


def evaluate_model(model: nn.Module | Predictor, dataset, batch_size: int = 128, mean=DEFAULT_MEAN,
                   std=DEFAULT_STD, reference: tuple[np.ndarray, np.ndarray] | None = None) -> dict:
    """Task metrics against ground truth, or against `reference` (a teacher's landmarks and state logits) when
    the data is unlabeled: then NME measures fidelity and states are scored against the teacher's decisions."""
    attributes: dict = {}
    lm, st, glm, gst = predict(model, dataset, batch_size, mean, std, attributes)
    if reference is not None:
        glm, gst = reference[0], (reference[1] > 0).astype(np.float32)
    if glm is None:
        raise ValueError("evaluation needs labeled data (landmarks) or a reference model")
    return metrics.evaluate(lm, glm, st, gst, attributes=attributes)
