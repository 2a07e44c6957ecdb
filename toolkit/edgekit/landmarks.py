"""The 68-point iBUG landmark scheme and the facial-part states (numpy only).

Point indices follow iBUG 300-W (0-based). "Left" and "right" are the subject's, as in 300-W and dlib:
points 36-41 are the subject's right eye (image left in a frontal photo), points 42-47 the left eye.
"""

from __future__ import annotations

import numpy as np

NUM_POINTS = 68
SCHEME = "ibug68"

REGIONS: dict[str, tuple[int, int]] = {  # name -> [start, stop) point indices
    "jaw": (0, 17),
    "brows": (17, 27),
    "nose": (27, 36),
    "eyes": (36, 48),
    "mouth": (48, 68),
}

# Outer eye corners: the inter-ocular normaliser of NME.
OUTER_EYE_CORNERS = (36, 45)

# The three part states, in output order. Each is a logit; > 0 means open.
STATE_NAMES = ("left_eye_open", "right_eye_open", "mouth_open")
STATE_POINTS = {
    "left_eye_open": tuple(range(42, 48)),
    "right_eye_open": tuple(range(36, 42)),
    "mouth_open": tuple(range(60, 68)),
}


# What "open" means, on the 68 points (README, "Part states"), for every labeled set: SynthFaces' labels and the
# labels derived for real photos follow it, so training and evaluation agree.
# An eye is open when its eye aspect ratio (Soukupova & Cech 2016: the two lid-to-lid distances over twice the
# corner-to-corner width, points 37-41/38-40 over 36-39 for the subject's right eye) is at least 0.20.
EYE_OPEN_EAR = 0.20
# The mouth is open when the inner lips are apart: the mean gap between the inner lips' upper and lower points
# (61-67, 62-66, 63-65) is at least 0.15 of the mouth's width (outer corners 48-54). The state is geometric: lips
# parted that far in a smile count as open; a closed-lip smile does not.
MOUTH_OPEN_GAP = 0.15


def eye_aspect_ratio(landmarks: np.ndarray, first: int) -> np.ndarray:
    """(N,) EAR of the eye whose six points start at `first` (36: subject's right eye, 42: left)."""
    p = np.asarray(landmarks, dtype=np.float64)[:, first:first + 6]
    lids = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(p[:, 2] - p[:, 4], axis=-1)
    return lids / np.maximum(2 * np.linalg.norm(p[:, 0] - p[:, 3], axis=-1), 1e-12)


def mouth_gap_ratio(landmarks: np.ndarray) -> np.ndarray:
    """(N,) mean inner-lip gap over mouth width."""
    lm = np.asarray(landmarks, dtype=np.float64)
    gap = np.mean([np.linalg.norm(lm[:, a] - lm[:, b], axis=-1) for a, b in ((61, 67), (62, 66), (63, 65))], axis=0)
    return gap / np.maximum(np.linalg.norm(lm[:, 48] - lm[:, 54], axis=-1), 1e-12)


def states_from_points(landmarks: np.ndarray) -> np.ndarray:
    """(N, 3) float32 in {0, 1}, in STATE_NAMES order, from (N, 68, 2) points by the definition above."""
    return np.stack([eye_aspect_ratio(landmarks, 42) >= EYE_OPEN_EAR, eye_aspect_ratio(landmarks, 36) >= EYE_OPEN_EAR,
                     mouth_gap_ratio(landmarks) >= MOUTH_OPEN_GAP], axis=1).astype(np.float32)


def _flip_permutation() -> np.ndarray:
    pairs = [(i, 16 - i) for i in range(8)]  # jaw
    pairs += [(17, 26), (18, 25), (19, 24), (20, 23), (21, 22)]  # brows
    pairs += [(31, 35), (32, 34)]  # nose base
    pairs += [(36, 45), (37, 44), (38, 43), (39, 42), (40, 47), (41, 46)]  # eyes
    pairs += [(48, 54), (49, 53), (50, 52), (55, 59), (56, 58)]  # outer lips
    pairs += [(60, 64), (61, 63), (65, 67)]  # inner lips
    perm = np.arange(NUM_POINTS)
    for a, b in pairs:
        perm[a], perm[b] = b, a
    return perm


# Index map for a horizontal flip: flipped[i] = original[FLIP_PERMUTATION[i]] (with x -> 1 - x).
FLIP_PERMUTATION = _flip_permutation()
# After a horizontal flip the left and right eyes swap.
STATE_FLIP_PERMUTATION = np.array([1, 0, 2])
