"""A runtime measured beside its native reference in the same trial (the browser beside ONNX Runtime CPU).

A session that names a `reference_runtime` gets, in each trial, the reference on the same file: latency timed in
alternating halves with the session's own (a slow moment on a shared machine lands on both, so their ratio holds),
and, with evaluation data, parity of every output on every evaluation image.
"""

from __future__ import annotations

import numpy as np

from ..metrics import DEFAULT_NME_BUDGET, FP32_PARITY_TOLERANCE, nme_per_image
from ..runtime import load

HALVES = 2  # rounds of (session, reference) timing


def reference_of(session) -> str | None:
    return getattr(session, "reference_runtime", None)


def open_reference(session, artifact: str, threads: int | None, xnnpack: bool):
    return load(artifact, reference_of(session), threads=threads, xnnpack=xnnpack)


def side_by_side(timer, ref_timer, sample: np.ndarray, runs: int, min_s: float) -> tuple[list[float], list[float]]:
    """(session seconds, reference seconds), each timed in HALVES alternating rounds."""
    mine: list[float] = []
    theirs: list[float] = []
    for _ in range(HALVES):
        mine += timer(sample, max(1, runs // HALVES), min_s / HALVES)
        theirs += ref_timer(sample, max(1, runs // HALVES), min_s / HALVES)
    return mine, theirs


def parity(outputs: list[np.ndarray], ref_outputs: list[np.ndarray], pred: np.ndarray, ref_pred: np.ndarray,
           scheme: str | None, logits_index: int | None) -> dict:
    """How far the session's outputs are from the reference's on the same inputs: the largest difference of each
    output relative to its scale (the export parity's FP32 measure), the landmarks' disagreement as NME, and the
    share of part states both call the same."""
    scaled = [float(np.abs(a - b).max()) / max(float(np.abs(b).max()), 1.0)
              for a, b in zip(outputs, ref_outputs, strict=True)]
    out = {"images": int(len(pred)), "max_abs_diff_scaled": max(scaled),
           "landmarks_max_abs_diff": float(np.abs(pred - ref_pred).max()),
           "nme_vs_reference": float(nme_per_image(pred, ref_pred, scheme).mean())}
    if logits_index is not None:
        out["state_agreement"] = float(np.mean((outputs[logits_index] > 0) == (ref_outputs[logits_index] > 0)))
    return out


def summarize(trials: list[dict], precision: str, nme_budget: float | None) -> dict | None:
    """The cell's reference record: the reference's p50, the ratio of p50s per trial (median), and the parity of
    the first trial with its verdict (FP32: every output within FP32_PARITY_TOLERANCE of its scale; FP16/INT8: the
    NME within the artifact's budget of the reference's, relative)."""
    refs = [t["reference"] for t in trials if t.get("reference")]
    if not refs:
        return None
    mine = [float(np.median(t["latency_ms"])) for t in trials if t.get("reference")]
    theirs = [float(np.median(r["latency_ms"])) for r in refs]
    out = {"runtime": refs[0]["runtime"], "p50_ms": float(np.median(theirs)),
           "p50_ratio": float(np.median([a / b for a, b in zip(mine, theirs, strict=True)])),
           "trials": len(refs)}
    p = refs[0].get("parity")
    if p:
        if precision == "fp32":
            passed = p["max_abs_diff_scaled"] <= FP32_PARITY_TOLERANCE
            rule = f"max_abs_diff_scaled <= {FP32_PARITY_TOLERANCE}"
        else:
            budget = nme_budget if nme_budget is not None else DEFAULT_NME_BUDGET
            relative = p["nme_change"] / p["nme_reference"] if p["nme_reference"] > 0 else 0.0
            passed, rule = relative <= budget, f"relative NME change <= {budget}"
            p = {**p, "relative_nme_change": relative}
        out["parity"] = {**p, "passed": bool(passed), "rule": rule}
    return out
