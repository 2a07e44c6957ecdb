"""Run a PyTorch model over a dataset and score it with edgekit.metrics."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..data.batches import loader
from ..data.transforms import DEFAULT_MEAN, DEFAULT_STD


@torch.no_grad()
def predict(model: nn.Module, dataset, batch_size: int = 128, mean=DEFAULT_MEAN, std=DEFAULT_STD):
    """Return (pred_landmarks, state_logits, gt_landmarks or None, gt_states or None) as numpy arrays."""
    model.eval()
    out = {"lm": [], "st": [], "glm": [], "gst": []}
    for b in loader(dataset, batch_size, mean=mean, std=std):
        lm, st = model(b.images)
        out["lm"].append(lm.float().numpy())
        out["st"].append(st.float().numpy())
        if b.landmarks is not None:
            out["glm"].append(b.landmarks.numpy())
        if b.states is not None:
            out["gst"].append(b.states.numpy())
    cat = {k: (np.concatenate(v) if v else None) for k, v in out.items()}
    return cat["lm"], cat["st"], cat["glm"], cat["gst"]


def evaluate_model(model: nn.Module, dataset, batch_size: int = 128, mean=DEFAULT_MEAN, std=DEFAULT_STD) -> dict:
    lm, st, glm, gst = predict(model, dataset, batch_size, mean, std)
    if glm is None:
        raise ValueError("evaluation needs labeled data (landmarks)")
    return metrics.evaluate(lm, glm, st, gst)
