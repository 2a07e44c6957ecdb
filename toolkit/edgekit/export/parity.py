"""Parity after every export: the artifact through its own runtime against the PyTorch model, on N samples.

FP32 must match to 1e-4 of each output's scale (landmarks: normalised crop units). For FP16 and INT8 the result
reports the NME change and the part-state agreement; the recipe's budget, not a fixed tolerance, decides those.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..outputs import OutputContract, edgekit_contract

FP32_TOLERANCE = metrics.FP32_PARITY_TOLERANCE


def parity(run, model: nn.Module, x: np.ndarray, precision: str, labels: np.ndarray | None = None,
           nme_budget: float | None = None, contract: OutputContract | None = None, absolute: bool = False) -> dict:
    """`run` maps a float32 batch to the artifact's outputs, in the order of `contract.names` (default: edgekit's
    landmarks, states). For FP16/INT8 with labels, `nme_budget` is the relative NME rise over the PyTorch model
    that still passes. FP32 must match every output to FP32_TOLERANCE of its scale."""
    c = contract or edgekit_contract(x.shape[-1])
    model.eval()
    with torch.no_grad():
        ref = [t.float().numpy() for t in model(torch.from_numpy(x))]
    got = [np.asarray(g).reshape(r.shape) for g, r in zip(run(x), ref, strict=True)]
    worst = max(float(np.abs(g - r).max()) / max(float(np.abs(r).max()), 1.0) for g, r in zip(got, ref, strict=True))
    out = {"samples": int(len(x)), "precision": precision, "max_abs_diff_scaled": worst}
    if c.landmark_index is not None:
        lm, ref_lm = np.asarray(c.decode(got)), np.asarray(c.decode(ref))
        diff = np.abs(lm - ref_lm)
        out.update({"landmarks_max_abs_diff": float(diff.max()), "landmarks_mean_abs_diff": float(diff.mean()),
                    "nme_vs_pytorch": float(metrics.nme_per_image(lm, ref_lm, c.scheme).mean())})
    if c.state_index is not None:
        out["state_agreement"] = float(np.mean((got[c.state_index] > 0) == (ref[c.state_index] > 0)))
    for i in c.other_indices:
        out.setdefault("outputs", {})[c.names[i]] = {
            "max_abs_diff": float(np.abs(got[i] - ref[i]).max()),
            "relative": float(np.abs(got[i] - ref[i]).mean() / max(float(np.abs(ref[i]).mean()), 1e-12))}
    if labels is not None and c.landmark_index is not None:
        out["nme_pytorch"] = float(metrics.nme_per_image(ref_lm, labels, c.scheme).mean())
        out["nme_artifact"] = float(metrics.nme_per_image(lm, labels, c.scheme).mean())
        out["nme_change"] = out["nme_artifact"] - out["nme_pytorch"]
    if precision == "fp32":
        out["tolerance"] = FP32_TOLERANCE
        out["passed"] = bool(worst <= FP32_TOLERANCE)
    else:
        out["passed"] = bool(all(np.isfinite(g).all() for g in got))
        if nme_budget is not None and labels is not None and absolute and "nme_pytorch" in out:
            out["nme_budget_absolute"] = nme_budget  # labels are the original's outputs: NME is fidelity
            out["passed"] = out["passed"] and out["nme_change"] <= nme_budget
        elif nme_budget is not None and labels is not None and out.get("nme_pytorch", 0) > 0:
            out["nme_budget"] = nme_budget
            out["relative_nme_change"] = out["nme_change"] / out["nme_pytorch"]
            out["passed"] = out["passed"] and out["relative_nme_change"] <= nme_budget
    return out
