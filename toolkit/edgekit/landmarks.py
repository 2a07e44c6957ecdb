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
