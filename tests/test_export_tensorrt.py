"""TensorRT: the trtexec command for devices (always), and a real engine build where TensorRT and a GPU exist."""

import shlex

import pytest

from edgekit.export.tensorrt_build import (
    EngineSpec,
    build_engine,
    qdq_zero_points_are_zero,
    tensorrt_available,
    trtexec_command,
    write_build_script,
)


def test_trtexec_command_is_complete_for_tensorrt_10():
    cmd = trtexec_command("model.onnx", "model.engine", EngineSpec(("int8", "fp16"), dla_core=0))
    assert cmd[0] == "trtexec"
    for part in ("--onnx=model.onnx", "--saveEngine=model.engine", "--int8", "--fp16", "--timingCacheFile=timing.cache",
                 "--minShapes=image:1x3x112x112", "--optShapes=image:1x3x112x112", "--maxShapes=image:32x3x112x112",
                 "--useDLACore=0", "--allowGPUFallback", "--memPoolSize=workspace:1024M"):
        assert part in cmd, part


def test_tensorrt_11_uses_strongly_typed_instead_of_precision_flags():
    cmd = trtexec_command("m.onnx", "m.engine", EngineSpec(("int8", "fp16")), trt_major=11)
    assert "--stronglyTyped" in cmd and "--int8" not in cmd and "--fp16" not in cmd


def test_build_script_quotes_paths_and_is_executable(tmp_path):
    onnx_path = tmp_path / "my model.onnx"
    script = write_build_script(onnx_path, "my model.engine", EngineSpec(("int8", "fp16")), tmp_path / "build.sh")
    text = script.read_text()
    assert script.stat().st_mode & 0o111
    line = [ln for ln in text.splitlines() if ln.startswith("trtexec")][0]
    assert shlex.split(line)[1] == "--onnx=my model.onnx"


def test_zero_point_check_flags_asymmetric_qdq(tiny_context, tmp_path):
    from edgekit.compress.quantize import QuantScheme, run_ptq
    from edgekit.compress.stages.quantize import QuantizeConfig
    from edgekit.convert.onnx import export_onnx

    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), ["landmarks", "states"])
    cfg = QuantizeConfig(calibration={"images": 40}, fallback=None)
    sym, _ = run_ptq(fp32, cfg, QuantScheme(symmetric_activations=True), tiny_context, tmp_path)
    asym, _ = run_ptq(fp32, cfg, QuantScheme(symmetric_activations=False), tiny_context, tmp_path)
    assert qdq_zero_points_are_zero(sym) == (True, [])
    ok, offenders = qdq_zero_points_are_zero(asym)
    assert not ok and offenders


@pytest.mark.skipif(not tensorrt_available()[0], reason=f"TensorRT unusable here: {tensorrt_available()[1]}")
def test_engine_builds_from_qdq_onnx(tiny_context, tmp_path):
    from edgekit.compress.quantize import QuantScheme, run_ptq
    from edgekit.compress.stages.quantize import QuantizeConfig
    from edgekit.convert.onnx import export_onnx

    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), ["landmarks", "states"])
    int8, _ = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None),
                      QuantScheme(symmetric_activations=True), tiny_context, tmp_path)
    engine = build_engine(int8, tmp_path / "m.engine", EngineSpec(("int8", "fp16")), tmp_path / "timing.cache")
    assert engine.stat().st_size > 0 and (tmp_path / "timing.cache").exists()
