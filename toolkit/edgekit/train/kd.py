"""Knowledge-distillation losses and the KD training step shared by distillation, pruning recovery and QAT."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..config.base import DistillLoss
from .losses import LANDMARK_LOSSES
from .memory_format import input_format


def binary_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(teacher || student) between the Bernoulli distributions of each state, softened by T, times T^2.

    BCE with soft targets equals cross-entropy; subtracting the teacher's entropy leaves the KL (>= 0).
    """
    t = temperature
    p = torch.sigmoid(teacher_logits / t)
    ce = F.binary_cross_entropy_with_logits(student_logits / t, p, reduction="mean")
    entropy = F.binary_cross_entropy_with_logits(teacher_logits / t, p, reduction="mean")
    return (ce - entropy) * t * t


class FeatureAdapters(nn.Module):
    """1x1 conv from the student's last feature map to the teacher's (hint learning, FitNets)."""

    def __init__(self, student_channels: int, teacher_channels: int):
        super().__init__()
        self.proj = nn.Conv2d(student_channels, teacher_channels, 1)

    def forward(self, s: torch.Tensor) -> torch.Tensor:
        return self.proj(s)


def feature_loss(adapted: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    if adapted.shape[-2:] != teacher.shape[-2:]:
        adapted = F.adaptive_avg_pool2d(adapted, teacher.shape[-2:])
    # Normalised by the teacher's energy so the weight means the same across architectures.
    return F.mse_loss(adapted, teacher) / teacher.pow(2).mean().clamp_min(1e-6)


def kd_step(teacher: nn.Module, loss: DistillLoss, scale: float, adapters: FeatureAdapters | None = None,
            view=None):
    """Build step(model, batch) -> (loss, logs) for the training loop. The teacher is frozen. `view` (the stage
    context's `canonical`) maps a model to (landmarks, states, *other outputs) for your own models' outputs."""
    lm_loss = LANDMARK_LOSSES[loss.landmarks]
    teacher.eval()
    if view is not None:
        teacher = view(teacher)

    def step(model: nn.Module, batch):
        model = view(model) if view is not None else model
        x = batch.images.to(memory_format=input_format(model))
        t_rest: tuple = ()
        if batch.teacher_landmarks is not None:  # targets precomputed once for a pool
            t_lm, t_st, t_feat = batch.teacher_landmarks, batch.teacher_states, batch.teacher_features
        else:
            with torch.no_grad():
                if adapters is not None:
                    t_feat = teacher.forward_features(x)
                    t_lm, t_st = teacher.head(t_feat)
                else:
                    t_lm, t_st, *t_rest = teacher(x)
        if adapters is not None:
            s_feat = model.forward_features(x)
            s_lm, s_st = model.head(s_feat)
            s_rest: list = []
        else:
            s_lm, s_st, *s_rest = model(x)
        logs = {}
        total = lm_loss(s_lm, t_lm, scale) if s_lm.numel() else s_lm.new_zeros(())
        logs["kd_landmarks"] = total.item()
        # Labels of another scheme (68-point synthetic faces for a 5-point model) cannot supervise.
        if batch.landmarks is not None and loss.ground_truth > 0 and batch.landmarks.shape == s_lm.shape:
            gt = lm_loss(s_lm, batch.landmarks, scale)
            total = total + loss.ground_truth * gt
            logs["gt_landmarks"] = gt.item()
        if loss.states > 0 and s_st.numel():
            kl = binary_kl(s_st, t_st, loss.temperature)
            total = total + loss.states * kl
            logs["kd_states"] = kl.item()
        if loss.outputs > 0 and s_rest:
            mse = sum(feature_loss(s.reshape(t.shape), t) for s, t in zip(s_rest, t_rest, strict=True))
            total = total + loss.outputs * mse
            logs["kd_outputs"] = mse.item()
        if adapters is not None and loss.features > 0:
            f = feature_loss(adapters(s_feat), t_feat)
            total = total + loss.features * f
            logs["kd_features"] = f.item()
        return total, logs

    return step
