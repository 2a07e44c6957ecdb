"""Robustness slices: NME over the images of one condition (profile faces, occlusion, low light, small faces...).

Compression hurts the tails first, and a mean hides them. Every sample may carry `attributes` (SynthFaces records
its draws per image; labeled real sets their face size); yaw is estimated from the reference points where a set
does not record it, so every 68-point set gets the pose slices. Numpy only: the device-side runner imports it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# asin(nose offset / half jaw width) x this = yaw in degrees: least squares against the drawn yaw of 600 SynthFaces
# v3 faces (train split; median error 2.5 degrees, 90th percentile 7.7). v3's jaw is the silhouette, as annotated on
# photos; v1's flat jaw would want 0.88.
YAW_GAIN = 0.52
# The evaluation .npz the bench runner reads holds each attribute as one array under this prefix.
ATTRIBUTE_PREFIX = "attr_"
# A slice with fewer images than this is reported, not judged (gate, deploy budgets): its mean is too noisy.
MIN_SLICE_IMAGES = 30


@dataclass(frozen=True)
class Slice:
    name: str
    attribute: str
    low: float | None = None  # member when low <= value < high (|value| when `absolute`)
    high: float | None = None
    absolute: bool = False
    description: str = ""

    def members(self, values: np.ndarray) -> np.ndarray:
        v = np.abs(values) if self.absolute else np.asarray(values, dtype=np.float64)
        keep = np.isfinite(v)
        if self.low is not None:
            keep &= v >= self.low
        if self.high is not None:
            keep &= v < self.high
        return keep


SLICES: tuple[Slice, ...] = (
    Slice("frontal", "yaw", high=15, absolute=True, description="|yaw| < 15 degrees"),
    Slice("turned", "yaw", low=15, high=30, absolute=True, description="15 <= |yaw| < 30 degrees"),
    Slice("profile", "yaw", low=30, absolute=True, description="|yaw| >= 30 degrees"),
    Slice("pitched", "pitch", low=10, absolute=True, description="|pitch| >= 10 degrees"),
    Slice("rolled", "roll", low=20, absolute=True, description="|roll| >= 20 degrees"),
    Slice("occluded", "occluded", low=0.5, description="an object drawn over the face"),
    Slice("glasses", "glasses", low=0.5, description="glasses drawn"),
    Slice("blurred", "blur", low=0.5, description="defocus or motion blur of at least 0.5 px"),
    Slice("noisy", "noise", low=5, description="sensor noise sigma >= 5 grey levels"),
    Slice("dark", "light", high=0.8, description="mid-grey rendered below 0.8 of itself (gain, gamma, offset)"),
    Slice("small-face", "face_px", high=64, description="landmark box under 64 px in the source image"),
)
SLICE_NAMES = tuple(s.name for s in SLICES)


def estimated_yaw(landmarks: np.ndarray) -> np.ndarray:
    """Yaw in degrees, (N,), from 68 points: the nose tip's offset from the middle of the jaw's ends, over half the
    jaw's width, after levelling the eyes (so roll does not read as yaw). Positive: the nose points to image right.
    A proxy: `benchmarks/RESULTS.md` gives its error against SynthFaces' drawn yaw."""
    lm = np.asarray(landmarks, dtype=np.float64)
    eyes = lm[:, 42:48].mean(1) - lm[:, 36:42].mean(1)
    angle = np.arctan2(eyes[:, 1], eyes[:, 0])
    c, s = np.cos(-angle), np.sin(-angle)
    x = lm[..., 0] * c[:, None] - lm[..., 1] * s[:, None]  # x after rotating the eye line level
    half = np.maximum((x[:, 16] - x[:, 0]) / 2, 1e-9)
    ratio = np.clip((x[:, 30] - (x[:, 0] + x[:, 16]) / 2) / half, -1.0, 1.0)
    return np.degrees(np.arcsin(ratio)) * YAW_GAIN


def attributes_from_points(landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """What 68 reference points tell about each image: its yaw."""
    lm = np.asarray(landmarks)
    if lm.ndim != 3 or lm.shape[1] != 68:
        return {}
    return {"yaw": estimated_yaw(lm)}


def concat_attributes(parts: list[dict | None]) -> dict[str, np.ndarray]:
    """Batches' attribute arrays -> one array per attribute that every batch has ({} if any batch has none)."""
    if not parts or any(p is None for p in parts):
        return {}
    keys = set.intersection(*(set(p) for p in parts))
    return {k: np.concatenate([np.asarray(p[k]) for p in parts]) for k in sorted(keys)}


def stack_attributes(per_image: list[dict | None]) -> dict[str, np.ndarray]:
    """Per-image attribute dicts -> one float array per attribute that every image has."""
    return concat_attributes([None if a is None else {k: np.array([float(v)]) for k, v in a.items()}
                              for a in per_image])


def slice_nme(nme: np.ndarray, attributes: dict[str, np.ndarray]) -> dict[str, dict]:
    """{slice: {"n", "nme"}} for every slice whose attribute the images have (nme None for an empty slice)."""
    nme = np.asarray(nme, dtype=np.float64)
    out = {}
    for s in SLICES:
        values = attributes.get(s.attribute)
        if values is None or len(values) != len(nme):
            continue
        keep = s.members(np.asarray(values))
        out[s.name] = {"n": int(keep.sum()), "nme": float(nme[keep].mean()) if keep.any() else None}
    return out
