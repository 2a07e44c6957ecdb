"""Landmark and part-state quality metrics (numpy only: the device-side runner imports this).

Landmark errors are normalised by the scheme's distance: for the default `ibug68`, the inter-ocular distance
(outer eye corners 36 and 45 of the ground truth), the 300-W convention; see `edgekit.schemes`. NME, failure
rate and AUC are reported as fractions; multiply by 100 for %.
"""

from __future__ import annotations

import numpy as np

from .landmarks import STATE_NAMES
from .schemes import IBUG68, Scheme
from .slices import attributes_from_points, slice_nme

FAILURE_THRESHOLD = 0.10
# An FP32 file through any runtime matches its source to this share of each output's scale (export parity and the
# bench's check of a runtime against its reference).
FP32_PARITY_TOLERANCE = 1e-4
# The relative NME rise an FP16/INT8 file may show when no recipe says otherwise.
DEFAULT_NME_BUDGET = 0.01


def _check_shapes(pred: np.ndarray, gt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    pred = np.asarray(pred, dtype=np.float64)
    gt = np.asarray(gt, dtype=np.float64)
    if pred.shape != gt.shape or pred.ndim != 3 or pred.shape[-1] != 2:
        raise ValueError(f"landmarks must both be (N, P, 2); got {pred.shape} and {gt.shape}")
    return pred, gt


def interocular(gt: np.ndarray, scheme: Scheme | None = None) -> np.ndarray:
    """Per-image normalising distance (outer eye corners for ibug68), shape (N,)."""
    return (scheme or IBUG68).normaliser(np.asarray(gt, dtype=np.float64))


def point_errors(pred: np.ndarray, gt: np.ndarray, scheme: Scheme | None = None) -> np.ndarray:
    """Per-point error normalised by the scheme's distance, shape (N, P)."""
    pred, gt = _check_shapes(pred, gt)
    if scheme is None and gt.shape[1] != IBUG68.points:
        raise ValueError(f"{gt.shape[1]} points need a landmark scheme (the default ibug68 has 68)")
    norm = np.maximum(interocular(gt, scheme), 1e-12)
    return np.linalg.norm(pred - gt, axis=-1) / norm[:, None]


def nme_per_image(pred: np.ndarray, gt: np.ndarray, scheme: Scheme | None = None) -> np.ndarray:
    return point_errors(pred, gt, scheme).mean(axis=1)


def failure_rate(nme: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """Fraction of images whose NME exceeds `threshold`."""
    return float(np.mean(np.asarray(nme) > threshold))


def auc(nme: np.ndarray, threshold: float = FAILURE_THRESHOLD) -> float:
    """Area under the cumulative error distribution on [0, threshold], normalised to [0, 1].

    The CED is a step function, so its integral has a closed form: each image contributes
    max(0, threshold - nme) / threshold. This is exact, unlike the usual trapezoid over a grid.
    """
    nme = np.asarray(nme, dtype=np.float64)
    return float(np.mean(np.clip(1.0 - nme / threshold, 0.0, 1.0)))


def region_nme(pred: np.ndarray, gt: np.ndarray, scheme: Scheme | None = None) -> dict[str, float]:
    err = point_errors(pred, gt, scheme)
    return {name: float(err[:, a:b].mean()) for name, (a, b) in (scheme or IBUG68).regions.items()}


def binary_scores(pred_positive: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Accuracy and F1 of the positive class. F1 is 1.0 when neither side has a positive (perfect agreement)."""
    p = np.asarray(pred_positive, dtype=bool)
    t = np.asarray(truth, dtype=bool)
    tp = int(np.sum(p & t))
    fp = int(np.sum(p & ~t))
    fn = int(np.sum(~p & t))
    denom = 2 * tp + fp + fn
    return {"accuracy": float(np.mean(p == t)), "f1": 1.0 if denom == 0 else 2 * tp / denom}


def state_scores(logits: np.ndarray, truth: np.ndarray) -> dict[str, dict[str, float]]:
    """Per-state accuracy and F1; a logit > 0 predicts "open"."""
    logits = np.asarray(logits)
    truth = np.asarray(truth) > 0.5
    return {name: binary_scores(logits[:, i] > 0, truth[:, i]) for i, name in enumerate(STATE_NAMES)}


def evaluate(
    pred_landmarks: np.ndarray,
    gt_landmarks: np.ndarray,
    state_logits: np.ndarray | None = None,
    gt_states: np.ndarray | None = None,
    scheme: Scheme | None = None,
    attributes: dict[str, np.ndarray] | None = None,
) -> dict:
    """All task metrics as one JSON-ready dict. `attributes` (per-image conditions: edgekit.slices) add NME per
    robustness slice; yaw comes from 68 reference points where the data records none."""
    nme = nme_per_image(pred_landmarks, gt_landmarks, scheme)
    out: dict = {
        "n": int(nme.shape[0]),
        "nme": float(nme.mean()),
        "failure_rate": failure_rate(nme),
        "auc": auc(nme),
        "region_nme": region_nme(pred_landmarks, gt_landmarks, scheme),
    }
    derived = attributes_from_points(gt_landmarks) if scheme is None or scheme.points == IBUG68.points else {}
    slices = slice_nme(nme, {**derived, **(attributes or {})})
    if slices:
        out["slices"] = slices
    if state_logits is not None and gt_states is not None and np.asarray(gt_states).size:
        states = state_scores(state_logits, gt_states)
        out["states"] = states
        out["state_accuracy"] = float(np.mean([s["accuracy"] for s in states.values()]))
        out["state_f1"] = float(np.mean([s["f1"] for s in states.values()]))
    return out
