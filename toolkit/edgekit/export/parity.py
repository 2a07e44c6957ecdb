"""Parity after every export: the artifact through its own runtime against the PyTorch model, on N samples.

FP32 must match to 1e-4 (landmarks, normalised crop units). For FP16 and INT8 the result reports the NME change
and the part-state agreement; the recipe's budget, not a fixed tolerance, decides those.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import metrics

FP32_TOLERANCE = 1e-4


def parity(run, model: nn.Module, x: np.ndarray, precision: str, labels: np.ndarray | None = None,
           nme_budget: float | None = None) -> dict:
    """`run` maps a float32 batch to the artifact's outputs (landmarks first, states second). For FP16/INT8 with
    labels, `nme_budget` is the relative NME rise over the PyTorch model that still passes."""
    model.eval()
    with torch.no_grad():
        ref_lm, ref_st = (t.numpy() for t in model(torch.from_numpy(x)))
    got = run(x)
    lm, st = np.asarray(got[0]).reshape(ref_lm.shape), np.asarray(got[1]).reshape(ref_st.shape)
    diff = np.abs(lm - ref_lm)
    out = {
        "samples": int(len(x)),
        "precision": precision,
        "landmarks_max_abs_diff": float(diff.max()),
        "landmarks_mean_abs_diff": float(diff.mean()),
        "nme_vs_pytorch": float(metrics.nme_per_image(lm, ref_lm).mean()),
        "state_agreement": float(np.mean((st > 0) == (ref_st > 0))),
    }
    if labels is not None:
        out["nme_pytorch"] = float(metrics.nme_per_image(ref_lm, labels).mean())
        out["nme_artifact"] = float(metrics.nme_per_image(lm, labels).mean())
        out["nme_change"] = out["nme_artifact"] - out["nme_pytorch"]
    if precision == "fp32":
        out["tolerance"] = FP32_TOLERANCE
        out["passed"] = bool(out["landmarks_max_abs_diff"] <= FP32_TOLERANCE)
    else:
        out["passed"] = bool(np.isfinite(lm).all())
        if nme_budget is not None and labels is not None and out["nme_pytorch"] > 0:
            out["nme_budget"] = nme_budget
            out["relative_nme_change"] = out["nme_change"] / out["nme_pytorch"]
            out["passed"] = out["passed"] and out["relative_nme_change"] <= nme_budget
    return out
