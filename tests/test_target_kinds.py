"""A new device kind is one YAML file: no code names it, and export, bench and the deploy decision take it from
its declared capabilities (arch, accelerator, runtimes, formats, precision)."""

import json
import shutil

from conftest import other_arch
from edgekit.bench.deploy import decide
from edgekit.config.catalog import find
from edgekit.config.target import load_target
from edgekit.export.artifacts import plan

OTHER_ARCH = other_arch()
BOARD = f"""name: npu-board
description: a single-board computer no edgekit code has heard of
hardware: {{kind: rk3588-board, arch: {OTHER_ARCH}, accelerator: none}}
runtimes: [litert]
formats: [tflite]
precision: [int8, fp32, fp16]
threads: 4
latency_budget_ms: {{p50: 50.0}}
"""


def test_a_new_device_kind_is_one_yaml_file(tiny_run, tmp_path):
    (tmp_path / "npu-board.yaml").write_text(BOARD)
    board = load_target(tmp_path / "npu-board.yaml")
    assert (board.arch, board.accelerator, board.has_gpu) == (OTHER_ARCH, "none", False)
    assert board.can_run("tflite", "fp16") and not board.can_run("onnx", "fp32")
    files = {p.filename for p in plan([board])}
    assert files == {"model.int8.tflite", "model.fp32.tflite", "model.fp16.tflite"}
    # A GPU target declares its accelerator, and that alone gives it the CUDA runtimes and drops TFLite FP16.
    gpu = load_target(find("targets", "gpu")).model_copy(update={"formats": ["onnx", "tflite"]})
    assert gpu.has_gpu and gpu.can_run("tflite", "fp32") and not gpu.can_run("tflite", "fp16")
    # Measured here, on another architecture than the board's: a proxy that names the file it would pick.
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    doc = decide(run, [board], 0.05, progress=False)
    d = doc.targets["npu-board"]
    assert d.status == "proxy" and d.chosen.file.endswith(".tflite"), d
    assert f"target npu-board is {OTHER_ARCH}" in d.reason
    assert json.loads((run / "deploy.json").read_text())["targets"]["npu-board"]["status"] == "proxy"
