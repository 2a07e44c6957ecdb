"""A pool of images with the teacher's outputs computed once, reused for many student steps.

A live teacher costs a full teacher forward per student step; for a 181-MMAC teacher and a 7-MMAC student
that is over half the distillation time. Computing the targets once for a pool and reusing them over epochs
(with flips, applied to targets and features alike) buys about twice the student steps in the same time.
`augment` adds, per epoch, a small similarity warp (image and target points by one matrix; not with stored
features) and colour jitter, so the reused images are not seen in only two forms.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from rich.progress import Progress
from torch.utils.data import DataLoader, Dataset

from ..data import SynthFaces
from ..data.batches import collate
from ..data.datasets import synth_stream
from ..data.sample import Sample
from ..data.transforms import normalize, photometric, similarity, warp_image, warp_points
from ..landmarks import FLIP_PERMUTATION, STATE_FLIP_PERMUTATION


@dataclass(frozen=True)
class PoolSample(Sample):
    teacher_landmarks: np.ndarray | None = None
    teacher_states: np.ndarray | None = None
    teacher_features: np.ndarray | None = None


class TeacherPool(Dataset):
    def __init__(self, ctx, size: int, features: bool, augment: tuple[str, ...] = ()):
        spec = ctx.data.train
        stream = synth_stream(spec)
        if stream:
            base = SynthFaces("train", size=ctx.input_size, length=size, offset=7_000_000 + ctx.seed * size,
                              version=stream[1])
        else:
            base = ctx.data.dataset(spec)
        self.n = min(size, len(base)) if not isinstance(base, SynthFaces) else size
        images, gt_lm, gt_st, t_lm, t_st, t_feat = [], [], [], [], [], []
        teacher = ctx.teacher.eval().to(memory_format=torch.channels_last)
        subset = torch.utils.data.Subset(base, range(self.n))
        rendered = DataLoader(subset, batch_size=128, num_workers=ctx.workers, collate_fn=list)
        with Progress(disable=not ctx.progress, transient=True) as bar, torch.inference_mode():
            task = bar.add_task("teacher targets", total=self.n)
            for samples in rendered:
                raw = np.stack([s.image for s in samples])
                x = torch.from_numpy(normalize(raw, ctx.meta.mean, ctx.meta.std)).to(memory_format=torch.channels_last)
                if features:
                    f = teacher.forward_features(x)
                    lm, st = teacher.head(f)
                    t_feat.append(f.to(torch.float16).numpy())
                else:
                    lm, st = teacher(x)
                t_lm.append(lm.numpy())
                t_st.append(st.numpy())
                images.append(raw)
                if samples[0].landmarks is not None:
                    gt_lm.append(np.stack([s.landmarks for s in samples]))
                if samples[0].states is not None:
                    gt_st.append(np.stack([s.states for s in samples]))
                bar.advance(task, len(raw))
        teacher.to(memory_format=torch.contiguous_format)
        self.images = np.concatenate(images)
        self.t_lm, self.t_st = np.concatenate(t_lm), np.concatenate(t_st)
        self.t_feat = np.concatenate(t_feat) if t_feat else None
        self.gt_lm = np.concatenate(gt_lm) if len(gt_lm) == len(images) else None
        self.gt_st = np.concatenate(gt_st) if len(gt_st) == len(images) else None
        self.mean, self.std = ctx.meta.mean, ctx.meta.std
        self.epoch, self.seed, self.augment = 0, ctx.seed, augment

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> PoolSample:
        img, t_lm, t_st = self.images[i], self.t_lm[i], self.t_st[i]
        gt_lm = None if self.gt_lm is None else self.gt_lm[i]
        gt_st = None if self.gt_st is None else self.gt_st[i]
        feat = None if self.t_feat is None else self.t_feat[i]
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if rng.random() < 0.5:
            img = img[:, ::-1]
            t_lm, t_st = _flip_points(t_lm), t_st[STATE_FLIP_PERMUTATION]
            gt_lm = None if gt_lm is None else _flip_points(gt_lm)
            gt_st = None if gt_st is None else gt_st[STATE_FLIP_PERMUTATION]
            feat = None if feat is None else feat[..., ::-1]
        if "warp" in self.augment:  # one matrix for the image and both sets of points
            m = similarity(rng, img.shape[0])
            img = warp_image(np.ascontiguousarray(img), m)
            t_lm, gt_lm = warp_points(t_lm, m, img.shape[0]), warp_points(gt_lm, m, img.shape[0])
        if "photometric" in self.augment:
            img = photometric(rng, img)
        return PoolSample(np.ascontiguousarray(img), gt_lm, gt_st, "pool", teacher_landmarks=t_lm,
                          teacher_states=t_st, teacher_features=None if feat is None else np.ascontiguousarray(feat))

    def batches(self, batch_size: int, steps: int, epoch: int, world=None):
        """One epoch: `steps` batches drawn without replacement (reshuffled per epoch). With `world` (under
        torchrun), this rank's share of each: items rank, rank + N, ... of the batch, as DistributedSampler takes."""
        from ..train import distributed

        self.epoch = epoch
        rank, size = (world.rank, world.size) if world is not None and world.distributed else (0, 1)
        if size > 1:
            distributed.per_rank_batch(batch_size, world)  # refuses a batch that does not split evenly
        order = np.random.default_rng([self.seed, epoch, 1]).permutation(np.resize(np.arange(self.n),
                                                                                   batch_size * steps))
        for k in range(steps):
            samples = [self[int(j)] for j in order[k * batch_size:(k + 1) * batch_size][rank::size]]
            batch = collate(samples, self.mean, self.std)
            batch.teacher_landmarks = torch.from_numpy(np.stack([s.teacher_landmarks for s in samples]))
            batch.teacher_states = torch.from_numpy(np.stack([s.teacher_states for s in samples]))
            if samples[0].teacher_features is not None:
                batch.teacher_features = torch.from_numpy(
                    np.stack([s.teacher_features for s in samples]).astype(np.float32))
            yield batch


def _flip_points(lm: np.ndarray) -> np.ndarray:
    out = lm[FLIP_PERMUTATION].copy()
    out[:, 0] = 1.0 - out[:, 0]
    return out

