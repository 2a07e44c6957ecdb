"""Batches of normalised tensors from any dataset of `Sample`s, through a torch DataLoader."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..slices import stack_attributes
from .sample import Sample
from .transforms import DEFAULT_MEAN, DEFAULT_STD, augment, normalize


@dataclass
class Batch:
    images: torch.Tensor  # (N, 3, H, W) float32, normalised
    landmarks: torch.Tensor | None  # (N, K, 2) or None when the data is unlabeled
    states: torch.Tensor | None  # (N, 3) or None
    # Precomputed teacher outputs (distillation from a pool); None means run the teacher on `images`.
    teacher_landmarks: torch.Tensor | None = None
    teacher_states: torch.Tensor | None = None
    teacher_features: torch.Tensor | None = None
    attributes: dict[str, np.ndarray] | None = None  # per-image conditions, for robustness slices (edgekit.slices)


class Augmented(Dataset):
    """Applies label-preserving augmentation, seeded per (seed, epoch, index) so runs reproduce."""

    def __init__(self, base, seed: int, epoch: int = 0, flip_p: float = 0.5, permutation=None, warp: bool = False):
        self.base, self.seed, self.epoch, self.flip_p = base, seed, epoch, flip_p
        self.permutation, self.warp = permutation, warp  # the scheme's flip pairs; small random similarity

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Sample:
        s = self.base[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        img, lm, st = augment(rng, s.image, s.landmarks, s.states, self.flip_p, self.permutation, self.warp)
        return Sample(img, lm, st, s.source, s.attributes)


def collate(samples: list[Sample], mean=DEFAULT_MEAN, std=DEFAULT_STD) -> Batch:
    images = torch.from_numpy(normalize(np.stack([s.image for s in samples]), mean, std))
    labeled = all(s.landmarks is not None for s in samples)
    with_states = all(s.states is not None for s in samples)
    return Batch(
        images,
        torch.from_numpy(np.stack([s.landmarks for s in samples])) if labeled else None,
        torch.from_numpy(np.stack([s.states for s in samples])) if with_states else None,
        attributes=stack_attributes([s.attributes for s in samples]) or None,
    )


def loader(dataset, batch_size: int, workers: int = 0, shuffle_seed: int | None = None,
           mean=DEFAULT_MEAN, std=DEFAULT_STD, sampler=None) -> DataLoader:
    """Batches of `dataset`; `sampler` (a distributed run's shard of it) replaces the order when given."""
    gen = None
    if shuffle_seed is not None:
        gen = torch.Generator().manual_seed(shuffle_seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle_seed is not None and sampler is None,
        generator=gen,
        sampler=sampler,
        num_workers=workers,
        collate_fn=lambda s: collate(s, mean, std),
        persistent_workers=False,
    )
