"""Latency statistics and the warnings trtexec-style tools give (host side: numpy and scipy)."""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..artifact_record import Status

CV_WARN = 0.05  # coefficient of variation above which a figure is flagged as noisy
# A percentile q is only meaningful with enough samples beyond it; ask for five in the tail.
TAIL_SAMPLES = 5


def bootstrap_ci(samples: np.ndarray, statistic=np.median, confidence: float = 0.95, seed: int = 0) -> list[float]:
    """Percentile bootstrap CI of `statistic` (scipy.stats.bootstrap)."""
    if len(samples) < 2 or np.ptp(samples) == 0:
        v = float(statistic(samples))
        return [v, v]
    res = stats.bootstrap((samples,), statistic, confidence_level=confidence, n_resamples=2000,
                          method="percentile", vectorized=True, axis=-1, random_state=seed)
    return [float(res.confidence_interval.low), float(res.confidence_interval.high)]


def p50_interval(trial_p50: np.ndarray, confidence: float = 0.95) -> list[float]:
    """A `confidence` interval for the typical p50 from a few per-trial medians: Student's t on their logarithms.

    A bench runs 3 trials, and no distribution-free interval reaches 95% from 3 values (the bootstrap's is their
    range, [min, max], which covers the median 1 - 2 / 2^3 = 75% of the time). Per-trial medians of one model are
    close to lognormal (a multiplicative machine-speed factor per process), and for a lognormal the median is
    exp(mean of logs), which t covers at the stated rate (tests/test_gate_holds.py simulates it: 0.93-0.97 on
    1,000 draws). The interval is honest about 3 trials: wide.
    """
    x = np.log(np.asarray(trial_p50, float))
    if len(x) < 2 or np.ptp(x) == 0:
        v = float(np.exp(x.mean()))
        return [v, v]
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))
    return [float(np.exp(x.mean() - half)), float(np.exp(x.mean() + half))]


def summarize_latency(trials: list[list[float]]) -> dict:
    """Pool the trials' per-run latencies (ms) into the reported figures, and keep the per-trial medians.

    The p50's CI comes from the per-trial medians, not the pooled runs: runs within one process are correlated
    (same allocator state, same placement, same JIT choices), so pooling them makes the interval far too narrow
    (`p50_interval`). With one trial there is nothing to go on, and the CI is the point itself.
    """
    x = np.concatenate([np.asarray(t, float) for t in trials])
    trial_p50 = np.array([np.median(t) for t in trials])
    p50, p90, p99 = np.percentile(x, [50, 90, 99])
    mean, std = float(x.mean()), float(x.std(ddof=1)) if len(x) > 1 else 0.0
    return {
        "n": int(len(x)),
        "min": float(x.min()),
        "p50": float(p50),
        "p90": float(p90),
        "p99": float(p99),
        "mean": mean,
        "std": std,
        "cv": std / mean if mean else 0.0,
        "p50_ci95": p50_interval(trial_p50),
        "trial_p50": [float(v) for v in trial_p50],
    }


def latency_warnings(summary: dict) -> list[str]:
    out = []
    if summary["cv"] > CV_WARN:
        out.append(f"high variation: CV {100 * summary['cv']:.1f}% > {100 * CV_WARN:.0f}% "
                   "(noisy machine? pin threads, close other work, or add trials)")
    for q in (90, 99):
        need = int(np.ceil(TAIL_SAMPLES / (1 - q / 100)))
        if summary["n"] < need:
            out.append(f"too few samples for p{q}: {summary['n']} < {need}")
    spread = summary["trial_p50"]
    if len(spread) > 1 and min(spread) > 0 and max(spread) / min(spread) > 1 + CV_WARN:
        out.append(f"trials disagree: per-trial p50 {min(spread):.3f}-{max(spread):.3f} ms")
    return out


def int8_slower_warnings(records: list[dict]) -> None:
    """Flag INT8 cells slower than a float cell of the same format on the same runtime (added in place)."""
    ok = [r for r in records if r["status"] == Status.OK]
    for r in ok:
        if r["precision"] != "int8":
            continue
        for f in ok:
            same = (f["format"], f["runtime"], f.get("variant_group")) == (r["format"], r["runtime"],
                                                                         r.get("variant_group"))
            if same and f["precision"] in ("fp32", "fp16") and f["latency"]["p50"] < r["latency"]["p50"]:
                r["warnings"].append(f"INT8 slower than {f['precision'].upper()} on {r['runtime']}: "
                                     f"p50 {r['latency']['p50']:.3f} ms vs {f['latency']['p50']:.3f} ms")
