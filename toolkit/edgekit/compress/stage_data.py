"""The recipe's data as stages use it: datasets, training batches, and splits held in memory for scoring."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from ..data import SynthFaces, open_dataset
from ..data.batches import Augmented, loader
from ..data.datasets import synth_stream
from ..models.checkpoint import CheckpointMeta
from ..outputs import OutputContract
from ..slices import concat_attributes
from .model_view import canonical, run_outputs

if TYPE_CHECKING:  # types only: config.recipe reads the stage registry in this room
    from ..config.recipe import DataSpec


class StageData:
    """One per run, shared by every stage: datasets open once and split arrays are materialised once."""

    def __init__(self, spec: DataSpec, teacher: nn.Module, meta: CheckpointMeta, contract: OutputContract,
                 seed: int = 0, workers: int = 1):
        self.spec, self.teacher, self.meta, self.contract = spec, teacher, meta, contract
        self.seed, self.workers = seed, workers
        self._cache: dict = {}

    # The recipe's split names, so stages write `ctx.data.val`.
    @property
    def train(self) -> str:
        return self.spec.train

    @property
    def val(self) -> str:
        return self.spec.val

    @property
    def eval(self) -> str:
        return self.spec.eval

    @property
    def calibration(self) -> str:
        return self.spec.calibration

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    def dataset(self, spec: str):
        if spec not in self._cache:
            self._cache[spec] = open_dataset(spec, self.input_size)
        return self._cache[spec]

    def train_batches(self, batch_size: int, steps_per_epoch: int, world=None):
        """epoch -> batches. SynthFaces renders fresh faces every epoch; real data is reshuffled and augmented.
        With `world` (a training loop under torchrun) each rank gets, and renders, only its share of every batch
        of `batch_size`: the ranks' shares together are the single-process batch, face for face."""
        from ..train import distributed

        spec = self.spec.train
        per_epoch = batch_size * steps_per_epoch
        shard = world is not None and world.distributed
        rank_batch = distributed.per_rank_batch(batch_size, world) if shard else batch_size
        sharded = lambda ds: distributed.sampler(ds, world) if shard else None  # noqa: E731
        stream = synth_stream(spec)
        if stream:
            split, version = stream

            def synth(epoch: int):
                ds = SynthFaces(split, size=self.input_size, length=per_epoch,
                                offset=(self.seed * 1000 + epoch) * per_epoch, version=version)
                augmented = Augmented(ds, self.seed, epoch, **self.augmentation())
                return loader(augmented, rank_batch, workers=self.workers, mean=self.meta.mean, std=self.meta.std,
                              sampler=sharded(augmented))

            return synth
        base = self.training_part(self.dataset(spec))

        def real(epoch: int):
            idx = np.random.default_rng([self.seed, epoch]).permutation(np.resize(np.arange(len(base)), per_epoch))
            subset = torch.utils.data.Subset(Augmented(base, self.seed, epoch, **self.augmentation()), idx.tolist())
            return loader(subset, rank_batch, workers=self.workers, mean=self.meta.mean, std=self.meta.std,
                          sampler=sharded(subset))

        return real

    def augmentation(self) -> dict:
        """How training batches are augmented: flips with the scheme's pairs (edgekit's own recipes: flips and
        photometric jitter only, as their published figures were trained)."""
        return {"permutation": self.contract.scheme.flip_permutation()}

    def arrays(self, spec: str, calibration: bool = False) -> dict:
        """A split materialised once as normalised inputs plus targets: labels in this scheme, or else the
        teacher's outputs (unlabeled data, or labels of another scheme), so repeated evaluation costs only
        inference. "reference" holds every output of the teacher (the original model), for fidelity."""
        key = ("arrays", spec, calibration)
        if key not in self._cache:
            ds = self.scoring_part(spec, self.dataset(spec), calibration)
            batches = list(loader(ds, 128, mean=self.meta.mean, std=self.meta.std))
            x = np.concatenate([b.images.numpy() for b in batches])
            labels = batches[0].landmarks
            c = self.contract
            labeled = labels is not None and labels.shape[1] == c.scheme.points
            reference = run_outputs(self.teacher, x) if not labeled or c.other_indices else None
            if labeled:
                glm = np.concatenate([b.landmarks.numpy() for b in batches])
                gst = np.concatenate([b.states.numpy() for b in batches]) if batches[0].states is not None else None
            elif c.landmark_index is not None:
                glm, gst = np.asarray(c.decode(reference), np.float32), None
                if c.state_index is not None:
                    gst = (reference[c.state_index] > 0).astype(np.float32)
            else:
                glm, gst = None, None
            attributes = concat_attributes([b.attributes for b in batches]) if labeled else {}
            self._cache[key] = {"x": x, "landmarks": glm, "states": gst, "reference": reference,
                                "labeled": labeled, "attributes": attributes}
        return self._cache[key]

    def scoring_part(self, spec: str, ds, calibration: bool = False):
        """The images of `spec` that validation and evaluation (or, `calibration`, INT8 calibration) read: all of
        them; your own data holds a part of its training folder out (compress/byom.py)."""
        return ds

    def training_part(self, ds):
        """The images of the training data that train (all, for edgekit's own data: its splits are separate)."""
        return ds

    def mean_teacher_landmarks(self, n: int = 256) -> torch.Tensor:
        batch = next(iter(self.train_batches(n, 1)(0)))
        with torch.no_grad():
            return canonical(self.teacher, self.contract)(batch.images)[0].mean(0)
