"""The gate's decision rule, on per-block latencies (host side: numpy and scipy.stats).

Following asv, Google Benchmark's compare.py and Bencher: a regression needs a large enough effect, statistical
significance and a confidence interval that clears half the threshold. Any one alone fails CI on noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .stats import bootstrap_ci

PASS, REGRESSION, INCONCLUSIVE = "pass", "regression", "inconclusive"
EXIT_CODES = {PASS: 0, REGRESSION: 1, INCONCLUSIVE: 3}


@dataclass(frozen=True)
class GateRule:
    threshold: float = 0.10  # relative slowdown that counts as a regression
    small_model_ms: float = 0.5  # below this baseline p50, timer and scheduler noise are a larger share...
    small_threshold: float = 0.25  # ...so the threshold widens
    alpha: float = 0.01
    aa_drift: float = 0.05  # an A/A ratio further than this from 1 means the machine is too noisy to judge
    accuracy_budget: float = 0.02  # relative NME increase allowed

    def threshold_for(self, baseline_p50_ms: float) -> float:
        return self.small_threshold if baseline_p50_ms < self.small_model_ms else self.threshold


def latency_verdict(baseline: list[float], candidate: list[float], rule: GateRule) -> dict:
    """Paired per-block medians (ms) of baseline and candidate -> effect, CI, p and verdict."""
    base, cand = np.asarray(baseline, float), np.asarray(candidate, float)
    if len(base) != len(cand) or len(base) < 3:
        raise ValueError("need at least 3 paired blocks")
    ratios = cand / base
    effect = float(np.median(ratios))
    ci = bootstrap_ci(ratios)
    # One-sided: is the candidate slower? Blocks are independent processes, so their medians are exchangeable.
    p = float(stats.mannwhitneyu(cand, base, alternative="greater").pvalue)
    threshold = rule.threshold_for(float(np.median(base)))
    slower = effect - 1 > threshold
    significant = p < rule.alpha
    clears = ci[0] - 1 > threshold / 2
    verdict = REGRESSION if (slower and significant and clears) else PASS
    return {"ratio": effect, "ratio_ci95": ci, "p_value": p, "threshold": threshold, "blocks": len(base),
            "baseline_p50_ms": float(np.median(base)), "candidate_p50_ms": float(np.median(cand)),
            "checks": {"slowdown_over_threshold": slower, "p_below_alpha": significant,
                       "ci_low_over_half_threshold": clears},
            "verdict": verdict}


def aa_drift(first: list[float], second: list[float]) -> float:
    """|median(second/first) - 1| for two measurements of the same artifact."""
    return float(abs(np.median(np.asarray(second, float) / np.asarray(first, float)) - 1))


def accuracy_verdict(baseline_nme: float | None, candidate_nme: float | None, rule: GateRule) -> dict:
    if baseline_nme is None or candidate_nme is None:
        return {"verdict": PASS, "checked": False, "reason": "no accuracy on one side (no labeled data?)"}
    change = candidate_nme / baseline_nme - 1 if baseline_nme else 0.0
    return {"checked": True, "baseline_nme": baseline_nme, "candidate_nme": candidate_nme, "relative_change": change,
            "budget": rule.accuracy_budget, "verdict": REGRESSION if change > rule.accuracy_budget else PASS}


def combine(*verdicts: str) -> str:
    if REGRESSION in verdicts:
        return REGRESSION
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS
