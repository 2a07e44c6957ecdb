"""What every stage needs: the frozen teacher, the recipe's data, validation, and where to write."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .. import metrics
from ..data import SynthFaces, open_dataset
from ..data.batches import Augmented, loader
from ..models.checkpoint import CheckpointMeta
from ..train.evaluate import predict_arrays, torch_predictor

if TYPE_CHECKING:  # types only: config.recipe reads the stage registry in this room
    from ..config.recipe import DataSpec, StudentSpec


@dataclass
class StageContext:
    teacher: nn.Module
    meta: CheckpointMeta  # the teacher's: input size, normalisation
    data: DataSpec
    run_dir: Path
    progress: bool = True
    channel_multiple: int = 8
    seed: int = 0
    workers: int = 1
    student: StudentSpec | None = None  # the recipe's, for stages that distill
    int8_schemes: tuple[str, ...] = ("asym",)  # the INT8 ONNX schemes the targets need ("asym", "sym")
    onnx_metadata: dict = field(default_factory=dict)  # stamped into every ONNX file a stage writes
    recipe_name: str = ""
    stage_dir: Path | None = None  # set per stage by `at`
    stage_key: str = ""
    _cache: dict = field(default_factory=dict)

    def at(self, stage_dir: Path, key: str) -> StageContext:
        """This context for one stage: same data caches, that stage's folder and cache key."""
        ctx = copy.copy(self)
        ctx.stage_dir, ctx.stage_key = stage_dir, key
        return ctx

    def export_onnx(self, model: nn.Module, path: Path) -> Path:
        from ..convert.onnx import export_onnx

        return export_onnx(model, path, self.input_shape, self.output_names, metadata=self.onnx_metadata)

    def score_onnx(self, path: Path, spec: str | None = None) -> dict:
        """Task metrics of an ONNX file through ONNX Runtime, on `spec` (default: the evaluation split)."""
        from ..runtime.ort import OrtSession

        return self.score(OrtSession(path, threads=None).run, spec or self.data.eval)

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (1, 3, self.input_size, self.input_size)

    @property
    def output_names(self) -> list[str]:
        return list(self.meta.outputs)

    def dataset(self, spec: str):
        if spec not in self._cache:
            self._cache[spec] = open_dataset(spec, self.input_size)
        return self._cache[spec]

    def train_batches(self, batch_size: int, steps_per_epoch: int):
        """epoch -> batches. SynthFaces renders fresh faces every epoch; real data is reshuffled and augmented."""
        spec = self.data.train
        per_epoch = batch_size * steps_per_epoch
        if spec == "synth" or spec.startswith("synth:"):
            split = spec.split(":")[1] if ":" in spec else "train"

            def synth(epoch: int):
                ds = SynthFaces(split, size=self.input_size, length=per_epoch,
                                offset=(self.seed * 1000 + epoch) * per_epoch)
                return loader(Augmented(ds, self.seed, epoch), batch_size, workers=self.workers,
                              mean=self.meta.mean, std=self.meta.std)

            return synth
        base = self.dataset(spec)

        def real(epoch: int):
            idx = np.random.default_rng([self.seed, epoch]).permutation(np.resize(np.arange(len(base)), per_epoch))
            subset = torch.utils.data.Subset(Augmented(base, self.seed, epoch), idx.tolist())
            return loader(subset, batch_size, workers=self.workers, mean=self.meta.mean, std=self.meta.std)

        return real

    def arrays(self, spec: str) -> dict:
        """A split materialised once as normalised inputs plus targets (labels, or the teacher's outputs when
        the data is unlabeled), so repeated evaluation costs only inference."""
        key = ("arrays", spec)
        if key not in self._cache:
            ds = self.dataset(spec)
            batches = list(loader(ds, 128, mean=self.meta.mean, std=self.meta.std))
            x = np.concatenate([b.images.numpy() for b in batches])
            if batches[0].landmarks is not None:
                glm = np.concatenate([b.landmarks.numpy() for b in batches])
                gst = np.concatenate([b.states.numpy() for b in batches]) if batches[0].states is not None else None
            else:
                glm, st = predict_arrays(torch_predictor(self.teacher), x)
                gst = (st > 0).astype(np.float32)
            self._cache[key] = {"x": x, "landmarks": glm, "states": gst}
        return self._cache[key]

    def score(self, model, spec: str) -> dict:
        """Task metrics of a torch model, or of any callable mapping a normalised batch to its outputs."""
        a = self.arrays(spec)
        run = torch_predictor(model) if isinstance(model, nn.Module) else model
        lm, st = predict_arrays(lambda x: tuple(run(x))[:2], a["x"])
        return metrics.evaluate(lm, a["landmarks"], st if a["states"] is not None else None, a["states"])

    def validate(self, model) -> dict:
        """Metrics on the validation split: against labels, or against the teacher when unlabeled."""
        return self.score(model, self.data.val)

    def evaluate(self, model) -> dict:
        """Metrics on the evaluation split (reported in the stage table)."""
        return self.score(model, self.data.eval)

    def latency_ms(self, model: nn.Module) -> float:
        """Measured p50 of this model's structure on this machine (the latency table; see latency_table)."""
        from .latency_table import LatencyTable

        if "latency_table" not in self._cache:
            self._cache["latency_table"] = LatencyTable.open()
        return self._cache["latency_table"].latency_ms(model, self.input_shape, self.output_names)

    def nme_budget(self, float_nme: float, max_increase: float) -> float:
        """The INT8 NME allowed: relative to the float model's NME."""
        return float_nme * (1.0 + max_increase)

    def mean_teacher_landmarks(self, n: int = 256) -> torch.Tensor:
        batch = next(iter(self.train_batches(n, 1)(0)))
        with torch.no_grad():
            return self.teacher(batch.images)[0].mean(0)
