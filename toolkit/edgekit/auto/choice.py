"""The auto search's front and choice, with ties: measurements closer than their noise are not ranked.

Latency on a shared machine moves by several percent within one sweep (and by far more between sweeps), and the
same weights in two file formats, or trained with another thread count, differ in the last bits of their NME. A
front or a choice decided by such differences is decided by noise: two runs of one grid would disagree. So a point
dominates another only where it is clearly better on one axis and no worse, within the tie, on the other; and among
the points whose NME ties the best under the budget, the fastest is chosen. "Clearly faster" is both: more than
LATENCY_TIE faster, and the two p50s' 95% intervals from the sweep apart.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .result import AutoPoint

LATENCY_TIE = 0.10  # relative: p50s within 10% are one speed (side-by-side spread seen here: a few percent)
NME_TIE = 0.001  # relative: 0.1% of the NME; a compression step that matters moves it by 1% or more


def ties() -> dict:
    return {"latency_rel": LATENCY_TIE, "nme_rel": NME_TIE}


def _clearly_less(a: float, b: float, tie: float) -> bool:
    return a < b * (1 - tie)


def _no_worse(a: float, b: float, tie: float) -> bool:
    return a <= b * (1 + tie)


def clearly_faster(q: AutoPoint, p: AutoPoint) -> bool:
    apart = q.p50_ci95_ms is None or p.p50_ci95_ms is None or q.p50_ci95_ms[1] < p.p50_ci95_ms[0]
    return apart and _clearly_less(q.p50_ms, p.p50_ms, LATENCY_TIE)


def dominates(q: AutoPoint, p: AutoPoint) -> bool:
    """`q` is clearly faster and as accurate within the tie, or clearly more accurate and as fast within it."""
    return ((clearly_faster(q, p) and _no_worse(q.nme, p.nme, NME_TIE))
            or (_clearly_less(q.nme, p.nme, NME_TIE) and _no_worse(q.p50_ms, p.p50_ms, LATENCY_TIE)))


def front(points: list[AutoPoint]) -> list[AutoPoint]:
    """The points no other point dominates, fastest first."""
    return sorted((p for p in points if not any(dominates(q, p) for q in points if q is not p)),
                  key=lambda p: (p.p50_ms, p.nme, p.label))


def choose(under_budget: list[AutoPoint]) -> AutoPoint | None:
    """The most accurate point; among those that tie it on NME, the fastest; among those that also tie on speed,
    the fewest MACs, then the smallest file, then the name: properties of the files, not of the noise, so that two
    runs of one grid choose alike."""
    if not under_budget:
        return None
    best = min(p.nme for p in under_budget)
    tied = [p for p in under_budget if _no_worse(p.nme, best, NME_TIE)]
    fastest = min(tied, key=lambda p: p.p50_ms)
    tied = [p for p in tied if not clearly_faster(fastest, p)]
    return min(tied, key=lambda p: (p.macs if p.macs is not None else float("inf"),
                                    p.size_bytes if p.size_bytes is not None else float("inf"), p.label))
