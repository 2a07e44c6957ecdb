"""`edgekit compress --target ...` exports what each target needs into one run directory, with sidecars."""

import json
import shlex

from conftest import TINY_DATA, onnx_only_cpu_target
from edgekit.config.catalog import find
from edgekit.config.target import int8_schemes, load_target
from edgekit.export.artifacts import plan
from edgekit.export.tensorrt_build import qdq_zero_points_are_zero


def recipe(path, teacher, stage):
    data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
    path.write_text(f"name: t\nteacher: {teacher}\ndata: {{{data}}}\nstages:\n  - {stage}\n")
    return path


def test_cpu_mobile_jetson_in_one_run(tiny_run):
    """tiny_run is `compress --target cpu,mobile,jetson` of a quantize recipe (conftest)."""
    exports = tiny_run / "exports"
    side = {p.name.removesuffix(".json"): json.loads(p.read_text()) for p in exports.glob("*.json")}
    assert set(side) == {"model.fp32.onnx", "model.int8.onnx", "model.int8.sym.onnx", "model.fp32.tflite",
                         "model.int8.tflite", "model.fp16.onnx", "model.int8.engine", "model.fp16.engine"}
    assert side["model.fp32.onnx"]["parity"]["landmarks_max_abs_diff"] <= 1e-4
    assert side["model.fp32.tflite"]["parity"]["passed"]
    int8_tfl = side["model.int8.tflite"]
    assert int8_tfl["io"]["inputs"][0]["dtype"] == "int8" and "scale" in int8_tfl["io"]["inputs"][0]["quantization"]
    assert "nme_change" in int8_tfl["parity"] and "state_agreement" in int8_tfl["parity"]
    # One INT8 ONNX per scheme the targets need: asymmetric uint8 for ONNX Runtime on CPU, symmetric for TensorRT.
    assert side["model.int8.onnx"]["targets"] == ["cpu"] and side["model.int8.onnx"]["int8_scheme"] == "asym"
    assert not qdq_zero_points_are_zero(exports / "model.int8.onnx")[0]
    assert side["model.int8.sym.onnx"]["targets"] == ["jetson"]
    assert side["model.int8.sym.onnx"]["tensorrt_qdq_symmetric"] is True
    engine = side["model.int8.engine"]
    assert engine["status"] == "build-on-device" and "built on the device" in engine["reason"]
    script = (exports / engine["build_script"]).read_text()
    cmd = shlex.split([ln for ln in script.splitlines() if ln.startswith("trtexec")][0])
    assert "--int8" in cmd and "--fp16" in cmd and "--onnx=engine-input.int8.onnx" in cmd
    assert (exports / "engine-input.int8.onnx").read_bytes() == (exports / "model.int8.sym.onnx").read_bytes()
    assert all(s["sha256"] for s in side.values() if s["status"] == "ok")
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert {a["file"] for a in manifest["artifacts"]} == set(side)
    assert "build-on-device" in (tiny_run.parent / "compress.stdout").read_text()


def test_a_failing_artifact_is_marked_and_the_others_carry_on(tiny_teacher, tmp_path, cli):
    # INT8 first in the target's list, so the FP32 file is built after the INT8 one failed.
    target = onnx_only_cpu_target(tmp_path)
    target.write_text(target.read_text().replace("precision: [fp32, int8]", "precision: [int8, fp32]"))
    r = cli("compress", "--recipe", str(recipe(tmp_path / "r.yaml", tiny_teacher, "fp16: {}")), "--target",
            str(target), "--run-dir", str(tmp_path / "run"), "--quiet", "--workers", "0", "--no-deploy")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [a["file"] for a in manifest["artifacts"]] == ["model.int8.onnx", "model.fp32.onnx"]
    status = {a["file"]: a for a in manifest["artifacts"]}
    assert status["model.int8.onnx"]["status"] == "export-failed"
    assert "no quantize stage" in status["model.int8.onnx"]["error"]
    assert status["model.fp32.onnx"]["status"] == "ok" and status["model.fp32.onnx"]["parity"]["passed"]
    assert "export-failed" in r.stdout


def test_each_target_gets_the_int8_scheme_of_its_runtime():
    cpu, mobile, jetson, gpu = (load_target(find("targets", n)) for n in ("cpu", "mobile", "jetson", "gpu"))
    assert (cpu.int8_scheme, jetson.int8_scheme, gpu.int8_scheme) == ("asym", "sym", "sym")
    assert int8_schemes([cpu]) == ("asym",) and int8_schemes([jetson]) == ("sym",)
    assert int8_schemes([jetson, cpu]) == ("asym", "sym")
    assert int8_schemes([mobile]) == ("asym",)  # LiteRT builds its own INT8; the run table still scores an ONNX one
    files = {p.filename: users for p, users in plan([cpu, mobile, jetson, gpu]).items()}
    assert files["model.int8.onnx"] == ["cpu"] and files["model.int8.sym.onnx"] == ["jetson", "gpu"]
    assert files["model.int8.engine"] == ["jetson", "gpu"] and files["model.int8.tflite"] == ["cpu", "mobile"]
