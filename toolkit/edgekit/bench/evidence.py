"""Judging an accuracy budget once, with its uncertainty: a paired, per-image comparison against the float model.

The deploy decision used to compare one artifact's mean NME on 200 images with a point limit, so an INT8 file
that passed its export check could be dropped for 0.005 points of sampling noise (and a NaN slipped through,
since every comparison with NaN is false). Here a candidate is over budget only when the evidence says so: on the
same images as the reference float artifact, the per-image excess e_i = nme_i - (1 + increase) * ref_i (or
nme_i - max_nme for an absolute budget) has a one-sided 95% lower confidence bound above 0 (Student's t on the
mean of e; 200 images are plenty for the central limit). A missing or non-finite NME is no evidence at all, and
the candidate is `not-measured`, never chosen on it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

from ..jsonio import is_finite_number

CONFIDENCE = 0.95


@dataclass
class AccuracyEvidence:
    reference: str | None  # the float artifact compared against, image by image (None: absolute budget)
    images: int
    budget: str  # e.g. "+1.0% over the float NME" or "NME <= 3.00%"
    mean_excess: float  # mean of e_i (NME points; > 0: over the budget on these images)
    excess_lower_bound: float  # one-sided 95% lower bound of the mean excess
    over_budget: bool  # shown over the budget with 95% confidence

    def to_json(self) -> dict:
        return asdict(self)


def finite_nme(v: object) -> bool:
    return is_finite_number(v) and v >= 0


def excess_evidence(per_image: list[float], reference: list[float] | None, increase: float | None,
                    max_nme: float | None, reference_name: str | None) -> AccuracyEvidence:
    """Evidence that `per_image` exceeds its budget: relative to `reference` image by image (`increase`), or
    against an absolute `max_nme`."""
    x = np.asarray(per_image, float)
    if max_nme is not None:
        excess, budget, ref_name = x - max_nme, f"NME <= {100 * max_nme:.2f}%", None
    else:
        excess = x - (1.0 + increase) * np.asarray(reference, float)
        budget, ref_name = f"+{100 * increase:.1f}% over the float NME, image by image", reference_name
    n = len(excess)
    mean = float(excess.mean())
    sd = float(excess.std(ddof=1)) if n > 1 else 0.0
    lower = mean - (float(stats.t.ppf(CONFIDENCE, n - 1)) * sd / math.sqrt(n) if n > 1 and sd > 0 else 0.0)
    return AccuracyEvidence(reference=ref_name, images=n, budget=budget, mean_excess=mean, excess_lower_bound=lower,
                            over_budget=lower > 0)
