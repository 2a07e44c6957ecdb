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
from ..data.datasets import synth_stream
from ..models.checkpoint import CheckpointMeta
from ..outputs import OutputContract, edgekit_contract

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
    contract: OutputContract | None = None  # how to read the models' outputs; None: edgekit's own
    _cache: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.contract is None:
            self.contract = edgekit_contract(self.meta.input_size)

    @property
    def scheme(self):
        return self.contract.scheme

    def canonical(self, model: nn.Module) -> nn.Module:
        """`model` as training sees it: (landmarks (N, K, 2) in [0, 1], state logits, *other outputs)."""
        if self.contract.names == ["landmarks", "states"] and self.contract.shapes[:1] == [(68, 2)]:
            return model
        return model if isinstance(model, CanonicalView) else CanonicalView(model, self.contract)

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
        return list(self.contract.names)

    def dataset(self, spec: str):
        if spec not in self._cache:
            self._cache[spec] = open_dataset(spec, self.input_size)
        return self._cache[spec]

    def train_batches(self, batch_size: int, steps_per_epoch: int):
        """epoch -> batches. SynthFaces renders fresh faces every epoch; real data is reshuffled and augmented."""
        spec = self.data.train
        per_epoch = batch_size * steps_per_epoch
        stream = synth_stream(spec)
        if stream:
            split, version = stream

            def synth(epoch: int):
                ds = SynthFaces(split, size=self.input_size, length=per_epoch,
                                offset=(self.seed * 1000 + epoch) * per_epoch, version=version)
                return loader(Augmented(ds, self.seed, epoch, **self.augmentation()), batch_size,
                              workers=self.workers, mean=self.meta.mean, std=self.meta.std)

            return synth
        base = self.dataset(spec)

        def real(epoch: int):
            idx = np.random.default_rng([self.seed, epoch]).permutation(np.resize(np.arange(len(base)), per_epoch))
            subset = torch.utils.data.Subset(Augmented(base, self.seed, epoch, **self.augmentation()), idx.tolist())
            return loader(subset, batch_size, workers=self.workers, mean=self.meta.mean, std=self.meta.std)

        return real

    def augmentation(self) -> dict:
        """How training batches are augmented: flips with the scheme's pairs (edgekit's own recipes: flips and
        photometric jitter only, as their published figures were trained)."""
        return {"permutation": self.scheme.flip_permutation()}

    def arrays(self, spec: str) -> dict:
        """A split materialised once as normalised inputs plus targets: labels in this scheme, or else the
        teacher's outputs (unlabeled data, or labels of another scheme), so repeated evaluation costs only
        inference. "reference" holds every output of the teacher (the original model), for fidelity."""
        key = ("arrays", spec)
        if key not in self._cache:
            ds = self.dataset(spec)
            limit = self.array_limit(spec)
            if limit is not None and len(ds) > limit:
                ds = torch.utils.data.Subset(ds, range(limit))
            batches = list(loader(ds, 128, mean=self.meta.mean, std=self.meta.std))
            x = np.concatenate([b.images.numpy() for b in batches])
            labels = batches[0].landmarks
            labeled = labels is not None and labels.shape[1] == self.scheme.points
            needs_reference = not labeled or self.contract.other_indices
            reference = run_outputs(self.teacher, x) if needs_reference else None
            if labeled:
                glm = np.concatenate([b.landmarks.numpy() for b in batches])
                gst = np.concatenate([b.states.numpy() for b in batches]) if batches[0].states is not None else None
            elif self.contract.landmark_index is not None:
                glm, gst = np.asarray(self.contract.decode(reference), np.float32), None
                if self.contract.state_index is not None:
                    gst = (reference[self.contract.state_index] > 0).astype(np.float32)
            else:
                glm, gst = None, None
            self._cache[key] = {"x": x, "landmarks": glm, "states": gst, "reference": reference,
                                "labeled": labeled}
        return self._cache[key]

    def array_limit(self, spec: str) -> int | None:
        """At most this many images of `spec` are held in memory for scoring (None: all)."""
        return None

    def score(self, model, spec: str) -> dict:
        """Task metrics of a torch model, or of any callable mapping a normalised batch to its outputs: landmark
        metrics in the scheme (against labels, or the teacher), states when both sides have them, and each
        other output's error against the teacher's (fidelity)."""
        a = self.arrays(spec)
        model = model.model if isinstance(model, CanonicalView) else model
        got = run_outputs(model, a["x"]) if isinstance(model, nn.Module) else _run_callable(model, a["x"])
        c = self.contract
        out: dict = {}
        if c.landmark_index is not None and a["landmarks"] is not None:
            st = got[c.state_index] if c.state_index is not None and a["states"] is not None else None
            out = metrics.evaluate(np.asarray(c.decode(got)), a["landmarks"], st, a["states"], scheme=c.scheme)
        fidelity = {}
        for i in c.other_indices:
            ref, val = a["reference"][i], np.asarray(got[i]).reshape(a["reference"][i].shape)
            err = np.abs(val.astype(np.float64) - ref)
            fidelity[c.names[i]] = {"max_abs": float(err.max()), "mean_abs": float(err.mean()),
                                    "relative": float(err.mean() / max(np.abs(ref).mean(), 1e-12))}
        if fidelity:
            out["outputs"] = fidelity
        if "nme" not in out:  # no landmark output: what early stopping and the INT8 budget minimise
            out["n"] = int(len(a["x"]))
            out["nme"] = float(np.mean([f["relative"] for f in fidelity.values()])) if fidelity else 0.0
        return out

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
            return self.canonical(self.teacher)(batch.images)[0].mean(0)


class CanonicalView(nn.Module):
    """A model's outputs as the training losses read them: (landmarks (N, K, 2) in [0, 1] of the crop, state
    logits (N, S) or (N, 0), *every other output). Shares the model's parameters: training the view trains it."""

    def __init__(self, model: nn.Module, contract: OutputContract):
        super().__init__()
        self.model, self.contract = model, contract

    def forward(self, x: torch.Tensor):
        out = tuple(self.model(x))
        c, n = self.contract, x.shape[0]
        lm = c.decode(out) if c.landmark_index is not None else x.new_zeros(n, 0, 2)
        st = out[c.state_index] if c.state_index is not None else x.new_zeros(n, 0)
        return (lm, st, *(out[i] for i in c.other_indices))


def run_outputs(model: nn.Module, x: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    """Every output of a torch model over normalised inputs, in batches."""
    model.eval()
    with torch.no_grad():
        parts = [[t.float().numpy() for t in _as_tuple(model(torch.from_numpy(x[i:i + batch])))]
                 for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _run_callable(run, x: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    parts = [[np.asarray(o) for o in run(x[i:i + batch])] for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _as_tuple(out) -> tuple:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)
