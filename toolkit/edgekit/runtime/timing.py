"""Wall-clock timing of a session call, shared by the bench runner and compression's latency table.

Standard library only: the device-side bench runner imports it.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping


def timed_runs(fn: Callable[[], object], min_runs: int, min_s: float) -> list[float]:
    """Call `fn` until at least `min_runs` calls and `min_s` seconds; return each call's seconds."""
    times: list[float] = []
    clock = time.perf_counter
    start = clock()
    while len(times) < min_runs or clock() - start < min_s:
        t = clock()
        fn()
        times.append(clock() - t)
    return times


def median_ms(fn: Callable[[], object], warmup_runs: int = 10, runs: int = 60, min_s: float = 0.3) -> float:
    """Median milliseconds per call after a warm-up: one in-process estimate, for searches that rank
    structures (the bench's fresh-process trials stay the published figure)."""
    timed_runs(fn, warmup_runs, 0.05)
    return 1000 * statistics.median(timed_runs(fn, runs, min_s))


def alternating_median_ms(calls: Mapping[str, Callable[[], object]], rounds: int = 3, runs: int = 30,
                          min_s: float = 0.1) -> dict[str, float]:
    """Median of per-round medians for each call, rounds alternating between the calls, so a slow moment on a
    shared machine lands on all of them rather than on one."""
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(rounds):
        for k, fn in calls.items():
            times[k].append(median_ms(fn, warmup_runs=5, runs=runs, min_s=min_s))
    return {k: statistics.median(v) for k, v in times.items()}
