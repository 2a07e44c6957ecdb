"""`edgekit compress --target ...` exports what each target needs into one run directory, with sidecars."""

import json
import shlex

from conftest import TINY_DATA


def recipe(path, teacher, stage):
    data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
    path.write_text(f"name: t\nteacher: {teacher}\ndata: {{{data}}}\nstages:\n  - {stage}\n")
    return path


def test_cpu_mobile_jetson_in_one_run(tiny_teacher, tmp_path, cli):
    r = cli("compress", "--recipe", str(recipe(tmp_path / "r.yaml", tiny_teacher,
                                               "quantize: {calibration: {images: 40}}")),
            "--target", "cpu,mobile,jetson", "--run-dir", str(tmp_path / "run"), "--quiet", "--workers", "0")
    assert r.returncode == 0, r.stderr
    exports = tmp_path / "run" / "exports"
    side = {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in exports.glob("*.json")}
    assert set(side) == {"model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite", "model.int8.tflite",
                         "model.fp16.onnx", "model.int8.engine", "model.fp16.engine"}
    assert side["model.fp32.onnx"]["parity"]["landmarks_max_abs_diff"] <= 1e-4
    assert side["model.fp32.tflite"]["parity"]["passed"]
    int8_tfl = side["model.int8.tflite"]
    assert int8_tfl["io"]["inputs"][0]["dtype"] == "int8" and "scale" in int8_tfl["io"]["inputs"][0]["quantization"]
    assert "nme_change" in int8_tfl["parity"] and "state_agreement" in int8_tfl["parity"]
    assert side["model.int8.onnx"]["tensorrt_qdq_symmetric"] is True
    assert side["model.int8.onnx"]["targets"] == ["cpu", "jetson"]
    engine = side["model.int8.engine"]
    assert engine["status"] == "build-on-device" and "built on the device" in engine["reason"]
    script = (exports / engine["build_script"]).read_text()
    cmd = shlex.split([ln for ln in script.splitlines() if ln.startswith("trtexec")][0])
    assert "--int8" in cmd and "--fp16" in cmd and "--onnx=engine-input.int8.onnx" in cmd
    assert (exports / "engine-input.int8.onnx").exists()
    assert all(s["sha256"] for s in side.values() if s["status"] == "ok")
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert {a["file"] for a in manifest["artifacts"]} == set(side)
    assert "build-on-device" in r.stdout


def test_a_failing_artifact_is_marked_and_the_others_carry_on(tiny_teacher, tmp_path, cli):
    r = cli("compress", "--recipe", str(recipe(tmp_path / "r.yaml", tiny_teacher, "fp16: {}")), "--target", "cpu",
            "--run-dir", str(tmp_path / "run"), "--quiet", "--workers", "0")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    status = {a["file"]: a for a in manifest["artifacts"]}
    assert status["model.int8.onnx"]["status"] == "export-failed"
    assert "no quantize stage" in status["model.int8.onnx"]["error"]
    assert status["model.fp32.onnx"]["status"] == "ok" and status["model.int8.tflite"]["status"] == "ok"
    assert "export-failed" in r.stdout
