"""Caches that cannot mix (issue 25): a rerun never reuses a record or a file that is not exactly what it says."""

import json
import shutil

import cv2
import numpy as np

from conftest import TINY_RUN_TARGETS
from edgekit.data.datasets import data_fingerprint


def test_a_label_files_identity_covers_the_images_it_lists(tmp_path):
    images = tmp_path / "photos"
    images.mkdir()
    cv2.imwrite(str(images / "face.png"), np.zeros((60, 60, 3), np.uint8))
    coords = ",".join(f"{10 + i % 40}.5" for i in range(136))
    csv = tmp_path / "labels" / "faces.csv"
    csv.parent.mkdir()
    csv.write_text(f"../photos/face.png,{coords}\n")
    before = data_fingerprint(csv)
    cv2.imwrite(str(images / "face.png"), np.full((64, 64, 3), 200, np.uint8))  # re-shot, same name and labels
    assert data_fingerprint(csv) != before


def test_a_rerun_rebuilds_an_artifact_whose_file_no_longer_matches_its_sidecar(tiny_run, tmp_path, cli):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    int8 = run / "exports" / "model.int8.onnx"
    int8.write_bytes(int8.read_bytes() + b"\0")  # changed behind the sidecar's back
    r = cli("compress", "--recipe", str(tiny_run.parent / "r.yaml"), "--target", TINY_RUN_TARGETS, "--run-dir",
            str(run), "--quiet", "--workers", "0", "--no-deploy")
    assert r.returncode == 0, r.stderr
    arts = {a["file"]: a for a in json.loads((run / "manifest.json").read_text())["artifacts"]}
    assert not arts["model.int8.onnx"].get("cached") and arts["model.fp32.onnx"].get("cached")
    sidecar = json.loads((run / "exports" / "model.int8.onnx.json").read_text())
    from edgekit.hashing import sha256_file

    assert sidecar["sha256"] == sha256_file(int8)


def test_a_stage_that_fails_mid_run_leaves_no_record_of_an_earlier_config(tiny_run, tmp_path, cli):
    """Config A done, config B dies inside the same stage: A's record must not survive to vouch for B's files."""
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    record = run / "01-quantize" / "stage.json"
    assert record.exists()
    broken = tmp_path / "calibration"
    broken.mkdir()
    (broken / "face.png").write_bytes(b"not a png")  # the stage reads it, mid-stage, and fails
    recipe = (tiny_run.parent / "r.yaml").read_text()
    recipe = recipe.replace('calibration: "synth:train:40"', f'calibration: "{broken}"')
    (tmp_path / "b.yaml").write_text(recipe)
    r = cli("compress", "--recipe", str(tmp_path / "b.yaml"), "--target", TINY_RUN_TARGETS, "--run-dir", str(run),
            "--quiet", "--workers", "0", "--no-deploy")
    assert r.returncode == 2 and "face.png" in r.stderr, r.stderr
    assert not record.exists()
