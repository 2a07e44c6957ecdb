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


def hflip(image: np.ndarray, landmarks: np.ndarray | None, states: np.ndarray | None):
    """Mirror a crop; landmark indices and left/right states swap so labels stay iBUG-correct."""
    image = np.ascontiguousarray(image[:, ::-1])
    if landmarks is not None:
        landmarks = landmarks[FLIP_PERMUTATION].copy()
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


def augment(rng: np.random.Generator, image, landmarks, states, flip_p: float = 0.5):
    if rng.random() < flip_p:
        image, landmarks, states = hflip(image, landmarks, states)
    return photometric(rng, image), landmarks, states
