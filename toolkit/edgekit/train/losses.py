"""Landmark and state losses."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def wing_loss(pred: torch.Tensor, target: torch.Tensor, scale: float, w: float = 10.0, eps: float = 2.0):
    """Wing loss (Feng et al., CVPR 2018) on coordinates scaled to pixels of the crop (`scale` = input size).

    Log-shaped for small errors so the fine residuals keep a strong gradient, L1 for large ones.
    """
    d = (pred - target).abs() * scale
    c = w - w * math.log(1.0 + w / eps)
    return torch.where(d < w, w * torch.log1p(d / eps), d - c).mean()


def l1_loss(pred: torch.Tensor, target: torch.Tensor, scale: float):
    return (pred - target).abs().mean() * scale


LANDMARK_LOSSES = {"wing": wing_loss, "l1": l1_loss}


def state_bce(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean BCE over the labeled states; NaN targets (real faces without state labels) are left out."""
    known = ~torch.isnan(target)
    if known.all():
        return F.binary_cross_entropy_with_logits(logits, target)
    if not known.any():
        return logits.sum() * 0.0  # a zero that still backpropagates
    return F.binary_cross_entropy_with_logits(logits[known], target[known])
