"""The shared training loop: it learns, it is reproducible, and it stops early."""

import torch

from edgekit.data import SynthFaces
from edgekit.data.batches import collate
from edgekit.models.registry import build
from edgekit.train.loop import FitConfig, fit
from edgekit.train.teacher import TeacherTrainConfig, supervised_step_loss, train_teacher


def tiny(**fit) -> TeacherTrainConfig:
    defaults = dict(epochs=2, steps_per_epoch=6, lr=3e-3, patience=5, warmup_epochs=0.5)
    defaults.update(fit)
    return TeacherTrainConfig(arch="mobile", arch_kwargs={"width": 0.25}, batch_size=16, val_size=48, test_size=48,
                              workers=0, fit=FitConfig(**defaults))


def test_loop_fits_a_fixed_batch():
    """The loop must drive the loss down hard on data it sees repeatedly (a broken step would not)."""
    ds = SynthFaces("train", length=16)
    batch = collate([ds[i] for i in range(16)])
    model = build("mobile", width=0.25)
    model.head.init_landmark_bias(batch.landmarks.mean(0))
    step = supervised_step_loss("l1", 1.0, 112.0)
    result = fit(model, FitConfig(epochs=4, steps_per_epoch=15, lr=3e-3, warmup_epochs=0.2),
                 lambda epoch: [batch] * 15, step, lambda m: {"nme": step(m, batch)[0].item()}, progress=False)
    losses = [h["loss"] for h in result.history]
    assert losses[-1] < 0.5 * losses[0], losses


def test_teacher_training_records_metrics_and_provenance():
    model, meta, result = train_teacher(tiny(epochs=2, steps_per_epoch=2), progress=False)
    assert meta.provenance["data"]["test"].startswith("SynthFaces seed 3")
    assert meta.metrics["macs"] > 0 and 0 < meta.metrics["synthfaces_test"]["nme"] < 1
    assert [h["epoch"] for h in result.history] == [1, 2] and result.best_epoch >= 1


def test_same_seed_gives_identical_weights():
    a, _, _ = train_teacher(tiny(epochs=1, steps_per_epoch=3), progress=False)
    b, _, _ = train_teacher(tiny(epochs=1, steps_per_epoch=3), progress=False)
    for (k, va), vb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(va, vb), k


def test_early_stopping_when_validation_stops_improving():
    _, _, result = train_teacher(tiny(lr=0.0, epochs=6, steps_per_epoch=1, patience=2), progress=False)
    assert result.stopped_early and len(result.history) == 3 and result.best_epoch == 1
