"""Inputs that used to slip through (issue 25): non-finite CSV coordinates, option-like SSH hosts, hung trials."""

import json

import cv2
import numpy as np
import pytest

from edgekit.errors import EdgekitError


@pytest.mark.parametrize("bad", ["nan", "inf", "-inf", "1e999"])
def test_the_csv_reader_refuses_non_finite_coordinates_like_the_others(tmp_path, bad):
    from edgekit.data.label_files import read_landmark_csv

    cv2.imwrite(str(tmp_path / "face.png"), np.zeros((40, 40, 3), np.uint8))
    coords = [f"{10 + i % 20}.5" for i in range(136)]
    coords[7] = bad
    (tmp_path / "faces.csv").write_text("face.png," + ",".join(coords) + "\n")
    with pytest.raises(EdgekitError, match=rf"faces.csv:1: '{bad}' is not a finite coordinate"):
        read_landmark_csv(tmp_path / "faces.csv")


@pytest.mark.parametrize("host", ["-Fevil", "-oProxyCommand=x", "user@-p", "-x:22"])
def test_a_host_cannot_start_like_an_option(host):
    from pydantic import ValidationError

    from edgekit.bench.remote import Remote
    from edgekit.config.target import Target

    with pytest.raises(EdgekitError, match="starting with a letter or digit"):
        Remote(host)
    with pytest.raises(ValidationError):
        Target(name="t", hardware={"kind": "cpu"}, runtimes=["onnxruntime"], formats=["onnx"], precision=["fp32"],
               host=host)
    assert Remote("pi@rpi-5.local:2222").host == "pi@rpi-5.local"


def test_ssh_and_scp_get_a_double_dash_before_the_host(monkeypatch, tmp_path):
    import subprocess

    from edgekit.bench.remote import Remote

    seen = []

    def record(argv, **kw):  # records the argv only; what sshd does with it is test_bench's real loopback test
        seen.append(argv)
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(subprocess, "run", record)
    r = Remote("dev.local")
    r.run(["true"])
    r.put([tmp_path], "/tmp/x")
    assert seen[0][seen[0].index("--") + 1] == "dev.local"
    assert seen[1][seen[1].index("--") + 1] == str(tmp_path.resolve())


def test_a_hung_trial_times_out_its_own_cell_and_the_sweep_goes_on(tiny_run):
    from edgekit.bench.protocol import Protocol
    from edgekit.bench.sweep import Cell, sweep
    from edgekit.config.catalog import find
    from edgekit.config.target import load_target

    target = load_target(find("targets", "cpu"))
    art = tiny_run / "exports/model.fp32.onnx"
    cells = [Cell("a", art, "onnx", "fp32", "onnxruntime"), Cell("b", art, "onnx", "fp32", "onnxruntime")]
    # Each trial would time runs for 60 s; the limit is 3 s: both cells time out, the sweep returns.
    slow = Protocol(warmup_runs=1, warmup_s=0.0, runs=10, min_s=60.0, trials=1, batch_sizes=(1,), eval_images=0)
    doc = sweep(cells, target, slow, None, [1, 3, 112, 112], trial_timeout_s=3)
    assert [r["status"] for r in doc["records"]] == ["timeout", "timeout"]
    assert "within 3 s" in doc["records"][0]["error"]
    json.dumps(doc)
