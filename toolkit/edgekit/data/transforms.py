"""Tensors from samples, and training augmentation that keeps labels exact."""

from __future__ import annotations

import numpy as np

from ..landmarks import FLIP_PERMUTATION, STATE_FLIP_PERMUTATION

DEFAULT_MEAN = (0.5, 0.5, 0.5)
DEFAULT_STD = (0.5, 0.5, 0.5)


def normalize(images: np.ndarray, mean=DEFAULT_MEAN, std=DEFAULT_STD) -> np.ndarray:
    """(N, H, W, 3) uint8 RGB -> (N, 3, H, W) float32, normalised as the checkpoint metadata says."""
    x = images.astype(np.float32) * (1.0 / 255.0)
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def hflip(image: np.ndarray, landmarks: np.ndarray | None, states: np.ndarray | None,
          permutation: np.ndarray | None = None):
    """Mirror a crop; landmark indices (by `permutation`, default iBUG 68) and left/right states swap so labels
    stay correct. Labels of another point count with no permutation cannot be mirrored and are dropped."""
    image = np.ascontiguousarray(image[:, ::-1])
    perm = FLIP_PERMUTATION if permutation is None else permutation
    if landmarks is not None and len(landmarks) != len(perm):
        landmarks = None
    if landmarks is not None:
        landmarks = landmarks[perm].copy()
        landmarks[:, 0] = 1.0 - landmarks[:, 0]
    if states is not None:
        states = states[STATE_FLIP_PERMUTATION].copy()
    return image, landmarks, states


def photometric(rng: np.random.Generator, image: np.ndarray) -> np.ndarray:
    """Brightness, contrast and per-channel gain jitter."""
    x = image.astype(np.float32)
    x = (x - x.mean()) * rng.uniform(0.75, 1.25) + x.mean() + rng.uniform(-20, 20)
    x *= rng.uniform(0.9, 1.1, 3).astype(np.float32)
    return np.clip(x, 0, 255).astype(np.uint8)


def similarity(rng: np.random.Generator, size: int) -> np.ndarray:
    """A small random similarity (rotation +-15 deg, scale 0.9-1.1, shift +-5%) about the centre of a `size`
    crop, as a 2x3 pixel matrix."""
    import cv2

    m = cv2.getRotationMatrix2D((size / 2.0, size / 2.0), rng.uniform(-15, 15), rng.uniform(0.9, 1.1))
    m[:, 2] += rng.uniform(-0.05, 0.05, 2) * size
    return m


def warp_image(image: np.ndarray, m: np.ndarray) -> np.ndarray:
    import cv2

    size = image.shape[0]
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def warp_points(landmarks: np.ndarray | None, m: np.ndarray, size: int) -> np.ndarray | None:
    """Landmarks in unit coordinates through the pixel matrix `m` of a `size` crop (exact), as float32."""
    if landmarks is None:
        return None
    return (((landmarks * size) @ m[:, :2].T + m[:, 2]) / size).astype(np.float32)


def geometric(rng: np.random.Generator, image: np.ndarray, landmarks: np.ndarray | None):
    """A small random similarity about the crop centre (`similarity`), applied to the image and, exactly, to
    the landmarks (unit coordinates)."""
    m = similarity(rng, image.shape[0])
    return warp_image(image, m), warp_points(landmarks, m, image.shape[0])


def augment(rng: np.random.Generator, image, landmarks, states, flip_p: float = 0.5,
            permutation: np.ndarray | None = None, warp: bool = False):
    if rng.random() < flip_p:
        image, landmarks, states = hflip(image, landmarks, states, permutation)
    if warp:
        image, landmarks = geometric(rng, image, landmarks)
    return photometric(rng, image), landmarks, states
