"""`edgekit teacher train`: train a model of a registered family on SynthFaces or labeled real data."""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import __version__
from ..data.batches import Augmented, loader
from ..data.synthface import SPLIT_SEEDS, SynthFaces
from ..landmarks import NUM_POINTS
from ..models.checkpoint import CheckpointMeta
from ..models.registry import build, count_macs_params
from .evaluate import evaluate_model
from .loop import FitConfig, FitResult, fit
from .losses import LANDMARK_LOSSES, state_bce
from .memory_format import input_format

TEST_SPLIT_SIZE = 1000  # the fixed SynthFaces test split that model cards report on


@dataclass
class TeacherTrainConfig:
    arch: str = "resnet"
    arch_kwargs: dict = field(default_factory=dict)
    input_size: int = 112
    batch_size: int = 64
    landmark_loss: str = "wing"
    state_weight: float = 1.0
    val_size: int = 500
    test_size: int = TEST_SPLIT_SIZE
    workers: int = 1
    threads: int | None = None
    fit: FitConfig = field(default_factory=FitConfig)


def supervised_step_loss(loss_name: str, state_weight: float, scale: float):
    lm_loss = LANDMARK_LOSSES[loss_name]

    def step(model, batch):
        images = batch.images.to(memory_format=input_format(model))
        lm, st = model(images)
        loss_lm = lm_loss(lm, batch.landmarks, scale)
        loss_st = state_bce(st, batch.states)
        return loss_lm + state_weight * loss_st, {"landmarks": loss_lm.item(), "states": loss_st.item()}

    return step


def mean_landmarks(n: int = 256, size: int = 112) -> torch.Tensor:
    ds = SynthFaces("train", size=size, length=n, offset=10_000_000)
    return torch.from_numpy(sum(ds[i].landmarks for i in range(n)) / n).reshape(NUM_POINTS, 2)


def train_teacher(cfg: TeacherTrainConfig, progress: bool = True, state_path: Path | None = None,
                  resume: bool = False) -> tuple[torch.nn.Module, CheckpointMeta, FitResult]:
    """Train on SynthFaces. With `state_path`, the loop state is saved every epoch; `resume` continues from it."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.fit.seed)
    model = build(cfg.arch, input_size=cfg.input_size, **cfg.arch_kwargs)
    model.head.init_landmark_bias(mean_landmarks(size=cfg.input_size))
    per_epoch = cfg.fit.steps_per_epoch * cfg.batch_size

    def train_batches(epoch: int):
        # Every epoch renders fresh faces: an endless, exactly labeled stream.
        ds = SynthFaces("train", size=cfg.input_size, length=per_epoch, offset=epoch * per_epoch)
        return loader(Augmented(ds, cfg.fit.seed, epoch), cfg.batch_size, workers=cfg.workers)

    val = SynthFaces("val", size=cfg.input_size, length=cfg.val_size)
    result = fit(
        model,
        cfg.fit,
        train_batches,
        supervised_step_loss(cfg.landmark_loss, cfg.state_weight, float(cfg.input_size)),
        lambda m: evaluate_model(m, val),
        description=f"train {cfg.arch}",
        progress=progress,
        state_path=state_path,
        resume=resume,
    )
    macs, params = count_macs_params(model, cfg.input_size)
    test = evaluate_model(model, SynthFaces("test", size=cfg.input_size, length=cfg.test_size))
    meta = CheckpointMeta(
        arch=cfg.arch,
        arch_kwargs=cfg.arch_kwargs,
        input_size=cfg.input_size,
        metrics={"synthfaces_test": test, "macs": macs, "params": params},
        provenance={
            "command": " ".join(["edgekit", *sys.argv[1:]]) if sys.argv and "edgekit" in sys.argv[0] else "",
            "data": {"train": f"SynthFaces seed {SPLIT_SEEDS['train']}", "val": f"SynthFaces seed "
                     f"{SPLIT_SEEDS['val']} x {cfg.val_size}", "test": f"SynthFaces seed {SPLIT_SEEDS['test']} x "
                     f"{cfg.test_size}"},
            "config": asdict(cfg),
            "best_epoch": result.best_epoch,
            "wall_s": round(result.wall_s, 1),
            "versions": {"edgekit": __version__, "torch": torch.__version__, "python": platform.python_version()},
        },
    )
    return model, meta, result
