"""The gate's decision rule, on per-block latencies (host side: numpy and scipy.stats).

Following asv, Google Benchmark's compare.py and Bencher: a regression needs a large enough effect, statistical
significance and a confidence interval that clears half the threshold. Any one alone fails CI on noise.

Same-run blocks are paired (baseline and candidate measured side by side in one block), so the test is the
one-sided Wilcoxon signed-rank test on per-block log ratios. Stored baselines were measured at another time, so
their blocks pair with nothing: there the test is the one-sided Mann-Whitney U. Either test has a smallest
p-value it can reach with n blocks (1/2^n paired, 1/C(2n, n) unpaired); a block count that cannot reach p < alpha
cannot detect anything, so it is inconclusive, never a pass.

The threshold follows measured noise instead of a fixed model-size cut: it is the larger of the configured
threshold and `noise_factor` (1) x the half-width of the 95% CI of the A/A (baseline vs baseline) median ratio.
Noise only ever stands between a slowdown and a verdict, never turns one into a pass: a ratio whose 95% CI lies
wholly over the configured threshold with p < alpha is a regression however noisy the A/A arm, and a slowdown
over the configured threshold that only the noise-widened threshold hides is inconclusive (exit 3).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import numpy as np
from scipy import stats

from ..jsonio import is_finite_number
from ..slices import MIN_SLICE_IMAGES
from .stats import bootstrap_ci

PASS, REGRESSION, INCONCLUSIVE = "pass", "regression", "inconclusive"
EXIT_CODES = {PASS: 0, REGRESSION: 1, INCONCLUSIVE: 3}


@dataclass(frozen=True)
class GateRule:
    threshold: float = 0.10  # smallest relative slowdown that counts as a regression on a quiet machine
    # The threshold never goes below what this run can resolve: noise_factor x the A/A CI half-width. 1.0, since
    # that half-width is already a 95% bound and the CI check below adds its own margin.
    noise_factor: float = 1.0
    alpha: float = 0.01
    aa_drift: float = 0.05  # an A/A ratio further than this from 1 means the machine is too noisy to judge
    aa_spread: float = 0.05  # an A/A 95% CI half-width over this (relative) is too noisy too, whatever its median
    accuracy_budget: float = 0.02  # relative NME increase allowed
    # Each robustness slice (edgekit.slices) with at least slice_min_images images may rise this much; a smaller
    # slice is reported, not judged. Wider than the mean's: a slice has fewer images, and a tail moves first.
    slice_budget: float = 0.05
    slice_min_images: float = MIN_SLICE_IMAGES

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if not is_finite_number(v) or v < 0:
                raise ValueError(f"{f.name} must be a finite number >= 0, got {v!r}")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")

    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in fields(cls)]


def min_blocks(alpha: float, paired: bool = True) -> int:
    """The fewest blocks whose exact one-sided test can reach p < alpha at all."""
    n = 1
    while (0.5 ** n if paired else 1 / math.comb(2 * n, n)) >= alpha:
        n += 1
    return n


def _ci_halfwidth(log_ratios: np.ndarray) -> float:
    lo, hi = bootstrap_ci(log_ratios)
    return float((math.exp(hi) - math.exp(lo)) / 2)


def _verdict(effect: float, ci: list[float], p: float, threshold: float, rule: GateRule) -> tuple[str, dict]:
    """`threshold` is the noise-widened one; `rule.threshold` the configured one."""
    checks = {"slowdown_over_threshold": effect - 1 > threshold, "p_below_alpha": p < rule.alpha,
              "ci_low_over_half_threshold": ci[0] - 1 > threshold / 2,
              # Shown beyond doubt against the configured threshold: no amount of A/A noise excuses it.
              "ci_low_over_base_threshold": ci[0] - 1 > rule.threshold}
    if checks["p_below_alpha"] and checks["ci_low_over_base_threshold"]:
        return REGRESSION, checks
    if checks["slowdown_over_threshold"] and checks["p_below_alpha"] and checks["ci_low_over_half_threshold"]:
        return REGRESSION, checks
    if threshold > rule.threshold and effect - 1 > rule.threshold:
        return INCONCLUSIVE, checks  # a slowdown over the configured threshold that only the noise hides
    return PASS, checks


def too_few_blocks(n: int, rule: GateRule, paired: bool) -> dict | None:
    need = min_blocks(rule.alpha, paired)
    if n >= need:
        return None
    test = "Wilcoxon signed-rank" if paired else "Mann-Whitney"
    return {"verdict": INCONCLUSIVE, "blocks": n,
            "reason": f"{n} blocks cannot reach p < {rule.alpha:g} with the {test} test "
                      f"(need at least {need}): nothing can be concluded"}


def paired_verdict(baseline: list[float], candidate: list[float], aa_second: list[float] | None,
                   rule: GateRule) -> dict:
    """Same-run blocks: per block, the candidate's p50 against one baseline run (`baseline`); `aa_second` is the
    block's other baseline run, which measures the noise (A/A) and sets the noise floor of the threshold."""
    base, cand = np.asarray(baseline, float), np.asarray(candidate, float)
    if len(base) != len(cand):
        raise ValueError("baseline and candidate need the same number of blocks")
    short = too_few_blocks(len(base), rule, paired=True)
    if short:
        return short
    d = np.log(cand / base)
    effect = float(math.exp(np.median(d)))
    lo, hi = bootstrap_ci(d)
    ci = [math.exp(lo), math.exp(hi)]
    # Exact one-sided signed-rank p for these block counts (scipy picks the exact method without ties).
    p = float(stats.wilcoxon(d, alternative="greater").pvalue) if np.any(d != 0) else 1.0
    noise = _ci_halfwidth(np.log(np.asarray(aa_second, float) / base)) if aa_second is not None else 0.0
    threshold = max(rule.threshold, rule.noise_factor * noise)
    verdict, checks = _verdict(effect, ci, p, threshold, rule)
    return {"test": "wilcoxon-signed-rank", "ratio": effect, "ratio_ci95": ci, "p_value": p, "threshold": threshold,
            "aa_ci_halfwidth": noise, "blocks": len(base), "baseline_p50_ms": float(np.median(base)),
            "candidate_p50_ms": float(np.median(cand)), "block_log_ratios": [float(x) for x in d],
            "checks": checks, "verdict": verdict}


def unpaired_verdict(baseline: list[float], candidate: list[float], rule: GateRule) -> dict:
    """Stored baseline: blocks measured at different times; the threshold's noise floor is the baseline's own
    spread (the 95% CI half-width of its median, relative)."""
    base, cand = np.asarray(baseline, float), np.asarray(candidate, float)
    short = too_few_blocks(min(len(base), len(cand)), rule, paired=False)
    if short:
        return short
    effect = float(np.median(cand) / np.median(base))
    lo, hi = bootstrap_ci(np.log(cand))
    blo, bhi = bootstrap_ci(np.log(base))
    ci = [math.exp(lo - bhi), math.exp(hi - blo)]  # conservative: the two medians' CIs combined
    p = float(stats.mannwhitneyu(cand, base, alternative="greater").pvalue)
    noise = _ci_halfwidth(np.log(base / np.median(base)))
    threshold = max(rule.threshold, rule.noise_factor * noise)
    verdict, checks = _verdict(effect, ci, p, threshold, rule)
    return {"test": "mann-whitney-u", "ratio": effect, "ratio_ci95": ci, "p_value": p, "threshold": threshold,
            "aa_ci_halfwidth": noise, "blocks": len(cand), "baseline_p50_ms": float(np.median(base)),
            "candidate_p50_ms": float(np.median(cand)), "checks": checks, "verdict": verdict}


def aa_drift(first: list[float], second: list[float]) -> float:
    """|median(second/first) - 1| for two measurements of the same artifact."""
    return float(abs(np.median(np.asarray(second, float) / np.asarray(first, float)) - 1))


def aa_spread(first: list[float], second: list[float]) -> float:
    """The 95% CI half-width of the A/A median ratio: how far apart two runs of the same file can land."""
    return _ci_halfwidth(np.log(np.asarray(second, float) / np.asarray(first, float)))


def aa_check(first: list[float], second: list[float], rule: GateRule) -> dict:
    """Is the machine steady enough to judge? Both the A/A median (drift) and its spread must be in limits."""
    drift, spread = aa_drift(first, second), aa_spread(first, second)
    problems = []
    if drift > rule.aa_drift:
        problems.append(f"A/A drift {100 * drift:.1f}% > {100 * rule.aa_drift:.0f}%")
    if spread > rule.aa_spread:
        problems.append(f"A/A spread (95% CI half-width) {100 * spread:.1f}% > {100 * rule.aa_spread:.0f}%")
    return {"drift": drift, "drift_limit": rule.aa_drift, "spread": spread, "spread_limit": rule.aa_spread,
            "steady": not problems, "problems": problems}


def _is_nme(v: object) -> bool:
    return is_finite_number(v) and v > 0


def accuracy_verdict(baseline_nme: float | None, candidate_nme: float | None, rule: GateRule,
                     expected: bool = True, baseline_slices: dict | None = None,
                     candidate_slices: dict | None = None) -> dict:
    """`expected`: accuracy was asked for (labeled data given). Then a missing or non-finite NME on either side is
    a failure to measure (inconclusive, with the reason), never a pass. With both sides' slices (NME per
    robustness slice, on the same images), a slice over its budget fails the gate by name even when the mean
    holds."""
    if baseline_nme is None and candidate_nme is None and not expected:
        return {"verdict": PASS, "checked": False, "reason": "accuracy not asked for (--eval-images 0)"}
    bad = [f"{side} NME is {v!r}" for side, v in (("baseline", baseline_nme), ("candidate", candidate_nme))
           if not _is_nme(v)]
    if bad:
        return {"verdict": INCONCLUSIVE, "checked": False, "baseline_nme": baseline_nme,
                "candidate_nme": candidate_nme, "reason": f"accuracy not measured: {'; '.join(bad)}"}
    change = candidate_nme / baseline_nme - 1
    out = {"checked": True, "baseline_nme": baseline_nme, "candidate_nme": candidate_nme, "relative_change": change,
           "budget": rule.accuracy_budget, "verdict": REGRESSION if change > rule.accuracy_budget else PASS}
    if baseline_slices and candidate_slices:
        out["slices"] = slice_verdicts(baseline_slices, candidate_slices, rule)
        over = [name for name, v in out["slices"].items() if v["verdict"] == REGRESSION]
        if over:
            out["verdict"] = REGRESSION
            out["failing_slices"] = over
    return out


def slice_verdicts(baseline: dict, candidate: dict, rule: GateRule) -> dict:
    """Per slice both sides report: images, both NMEs, the relative change and its verdict; a slice under
    `slice_min_images` images (or empty) is "not judged"."""
    out = {}
    for name, b in baseline.items():
        c = candidate.get(name)
        if c is None:
            continue
        row = {"n": b["n"], "baseline_nme": b["nme"], "candidate_nme": c["nme"], "budget": rule.slice_budget}
        if b["n"] < rule.slice_min_images or not (_is_nme(b["nme"]) and _is_nme(c["nme"])) or c["n"] != b["n"]:
            row["verdict"] = "not judged"
        else:
            row["relative_change"] = c["nme"] / b["nme"] - 1
            row["verdict"] = REGRESSION if row["relative_change"] > rule.slice_budget else PASS
        out[name] = row
    return out


def combine(*verdicts: str) -> str:
    if REGRESSION in verdicts:
        return REGRESSION
    if INCONCLUSIVE in verdicts:
        return INCONCLUSIVE
    return PASS
