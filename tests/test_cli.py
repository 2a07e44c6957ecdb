"""The command line as a user meets it: help, info, preview, training and evaluation, and clean errors."""

import json

import cv2

from edgekit.models.checkpoint import load_checkpoint


def test_help_lists_the_commands(cli):
    r = cli("--help")
    assert r.returncode == 0
    for command in ("info", "data", "teacher"):
        assert command in r.stdout


def test_info_reports_versions_runtimes_and_cpu_flags(cli):
    r = cli("info", "--json")
    assert r.returncode == 0
    fp = json.loads(r.stdout)
    assert fp["packages"]["torch"] and fp["packages"]["onnxruntime"]
    assert fp["runtimes"]["onnxruntime"] is True and fp["runtimes"]["torch"] is True
    assert isinstance(fp["cpu"]["flags"], list) and fp["cpu"]["cores"] >= 1
    human = cli("info")
    assert human.returncode == 0 and "CPU flags" in human.stdout


def test_data_preview_writes_a_grid_png(cli, tmp_path):
    out = tmp_path / "grid.png"
    r = cli("data", "preview", "--out", str(out), "--n", "8", "--columns", "4")
    assert r.returncode == 0, r.stderr
    img = cv2.imread(str(out))
    assert img.shape == (2 * 224, 4 * 224, 3) and img.std() > 10


def test_train_then_eval_a_tiny_model(cli, tmp_path):
    ckpt = tmp_path / "tiny.safetensors"
    r = cli("teacher", "train", "--out", str(ckpt), "--arch", "mobile", "--width", "0.25", "--head", "8,64",
            "--layout", "early-stride", "--epochs", "1", "--steps-per-epoch", "2", "--batch-size", "8",
            "--workers", "0", "--half")
    assert r.returncode == 0, r.stderr
    model, meta = load_checkpoint(ckpt)  # the head's size travels in the checkpoint's arch kwargs
    assert meta.arch_kwargs == {"width": 0.25, "head_channels": 8, "head_hidden": 64, "layout": "early-stride"}
    assert model.head.landmarks[1].out_features == 64
    assert "test NME" in r.stderr and ckpt.exists()
    out = tmp_path / "m.json"
    r = cli("teacher", "eval", "--weights", str(ckpt), "--data", "synth:test:16", "--out", str(out))
    assert r.returncode == 0, r.stderr
    m = json.loads(out.read_text())
    assert m["n"] == 16 and set(m["region_nme"]) == {"jaw", "brows", "nose", "eyes", "mouth"}
    assert "NME (inter-ocular)" in r.stdout


def test_bad_options_exit_2_with_one_line(cli, tmp_path):
    for args, message in [
        (("teacher", "eval", "--weights", str(tmp_path / "missing.safetensors")),
         "missing.safetensors: file not found"),
        (("teacher", "eval", "--data", "synth:nope"), "bad data spec 'synth:nope'"),
        (("teacher", "train", "--loss", "mse", "--out", str(tmp_path / "x.safetensors")), "--loss must be wing or l1"),
        (("teacher", "train", "--arch", "vit", "--out", str(tmp_path / "x.safetensors")), "unknown architecture 'vit'"),
        (("teacher", "train", "--arch", "mobile", "--head", "32", "--out", str(tmp_path / "x.safetensors")),
         "--head must be CHANNELS,HIDDEN as two positive integers (e.g. 32,256), got '32'"),
        (("teacher", "train", "--head", "32,256", "--out", str(tmp_path / "x.safetensors")),
         "--head applies to --arch mobile only, got --arch resnet"),
        (("teacher", "train", "--layout", "early-stride", "--out", str(tmp_path / "x.safetensors")),
         "--layout applies to --arch mobile only, got --arch resnet"),
        (("teacher", "train", "--arch", "mobile", "--layout", "late", "--out", str(tmp_path / "x.safetensors")),
         "unknown student layout 'late'; expected one of default, early-stride"),
        (("teacher", "train", "--val-data", "synth:nope", "--out", str(tmp_path / "x.safetensors")),
         "bad data spec 'synth:nope'"),
        (("compress", "--recipe", "ptq_int8", "--val-data", "dlib-voc:test", "--run-dir", str(tmp_path / "r")),
         "--val-data and --eval-data are for --model"),
    ]:
        r = cli(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr and "Traceback" not in r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_eval_on_unlabeled_data_explains_why_it_cannot(cli, tmp_path):
    img = (255 * (cv2.getGaussianKernel(64, 10) @ cv2.getGaussianKernel(64, 10).T)).astype("uint8")
    cv2.imwrite(str(tmp_path / "a.png"), cv2.merge([img, img, img]))
    r = cli("teacher", "eval", "--data", str(tmp_path))
    assert r.returncode == 2 and "evaluation needs labeled data" in r.stderr
