"""`edgekit bench`: runtimes, the runner, the sweep's outputs and schema, failures, and the remote path over ssh."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgekit.bench.api import BenchOptions, bench
from edgekit.bench.report import frontier
from edgekit.bench.stats import latency_warnings, summarize_latency
from edgekit.config.catalog import find
from edgekit.config.target import load_target
from edgekit.runtime import RuntimeUnavailable, load

SCHEMA = json.loads((Path(__file__).resolve().parents[1] / "toolkit/edgekit/bench/schema.json").read_text())
CPU = load_target(find("targets", "cpu"))


def quick(**kw) -> BenchOptions:
    return BenchOptions(**{"quick": True, "progress": False, "eval_images": 16, "trials": 2, **kw})


@pytest.mark.parametrize("name", ["model.fp32.onnx", "model.int8.onnx", "model.fp32.tflite", "model.int8.tflite"])
def test_each_local_runtime_agrees_with_the_fp32_onnx(tiny_run, name):
    x = np.random.default_rng(0).standard_normal((3, 3, 112, 112)).astype(np.float32)
    ref = load(tiny_run / "exports/model.fp32.onnx").run(x)
    out = load(tiny_run / "exports" / name).run(x)
    assert [o.shape for o in out] == [(3, 68, 2), (3, 3)]
    tol = 1e-4 if "fp32" in name else 0.05
    assert np.abs(out[0] - ref[0]).max() <= tol


def test_torch_runtime_runs_a_checkpoint(tiny_teacher):
    out = load(tiny_teacher, "torch").run(np.zeros((2, 3, 112, 112), np.float32))
    assert out[0].shape == (2, 68, 2) and np.isfinite(out[0]).all()


def test_unavailable_runtimes_say_why(tiny_run):
    with pytest.raises(RuntimeUnavailable, match="runs .tflite"):
        load(tiny_run / "exports/model.fp32.onnx", "litert")
    if "CUDAExecutionProvider" not in __import__("onnxruntime").get_available_providers():
        with pytest.raises(RuntimeUnavailable, match="lacks CUDAExecutionProvider"):
            load(tiny_run / "exports/model.fp32.onnx", "onnxruntime-cuda")


def test_runner_imports_no_torch_typer_or_matplotlib(tiny_run):
    code = ("import sys; from edgekit.bench.runner import main; rc = main(['--artifact', sys.argv[1], "
            "'--protocol', '{\"runs\": 5, \"min_s\": 0, \"warmup_runs\": 1, \"warmup_s\": 0}']); "
            "heavy = [m for m in ('torch', 'typer', 'matplotlib', 'scipy', 'cv2') if m in sys.modules]; "
            "print('HEAVY', heavy); sys.exit(rc)")
    r = subprocess.run([sys.executable, "-c", code, str(tiny_run / "exports/model.int8.onnx")], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "HEAVY []" in r.stdout
    result = json.loads(r.stdout.split("EDGEKIT-RESULT ", 1)[1].splitlines()[0])
    assert result["ok"] and len(result["latency_ms"]) >= 5 and result["init_ms"] > 0


def test_sweep_writes_schema_valid_json_table_pareto_and_html(tiny_run, tmp_path):
    doc, paths = bench(CPU, quick(run=tiny_run, out=tmp_path / "out"))
    jsonschema.validate(json.loads(paths["json"].read_text()), SCHEMA)
    cells = {(r["variant"], r["precision"], r["format"], r["runtime"]): r for r in doc["records"]}
    # A quantize-only run: its exports are the teacher's, so no separate reference row.
    assert set(cells) == {("teacher", "fp32", "onnx", "onnxruntime"), ("teacher", "int8", "onnx", "onnxruntime"),
                          ("teacher", "fp32", "tflite", "litert"), ("teacher", "int8", "tflite", "litert")}
    for r in doc["records"]:
        assert r["status"] == "ok", r.get("error")
        assert r["latency"]["p50"] > 0 and r["latency"]["n"] >= 2 * 20
        assert set(r["throughput"]) == {"1", "8"}
        assert 0 < r["accuracy"]["nme"] < 1 and r["accuracy"]["n"] == 16
        assert r["fingerprint"]["cpu"]["arch"]
    int8 = cells[("teacher", "int8", "tflite", "litert")]
    fp32 = cells[("teacher", "fp32", "tflite", "litert")]
    assert abs(int8["accuracy"]["nme"] - fp32["accuracy"]["nme"]) < 0.05  # same model, through its own runtime
    assert paths["pareto"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["pareto"].stat().st_size > 5000
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page and "teacher int8" in page and "p50 95% CI" in page
    assert "| variant | format | runtime | status |" in paths["table"].read_text()


def test_a_failing_cell_does_not_stop_the_sweep(tiny_run, tmp_path):
    bad = tmp_path / "broken.fp32.onnx"
    bad.write_bytes(b"not an onnx model")
    doc, paths = bench(CPU, quick(artifacts=[bad, tiny_run / "exports/model.int8.onnx"], out=tmp_path / "o"))
    by_file = {Path(r["artifact"]).name: r for r in doc["records"]}
    assert by_file["broken.fp32.onnx"]["status"] == "validation failed"
    assert by_file["broken.fp32.onnx"]["error"]  # the runtime's own message, for the report
    assert by_file["model.int8.onnx"]["status"] == "ok"
    jsonschema.validate(doc, SCHEMA)
    assert "validation failed" in paths["table"].read_text()


def test_export_failures_from_the_sidecar_show_as_export_failed(tiny_run, tmp_path):
    art = tmp_path / "model.fp16.onnx"
    art.write_bytes(b"")
    (tmp_path / "model.fp16.onnx.json").write_text(json.dumps({"status": "export-failed", "error": "boom",
                                                               "precision": "fp16"}))
    doc, _ = bench(CPU, quick(artifacts=[art], out=tmp_path / "o", eval_images=0))
    assert [(r["status"], r["error"]) for r in doc["records"]] == [("export failed", "boom")]


def test_bench_through_a_real_sshd_on_loopback(tiny_run, sshd, tmp_path):
    alias, config = sshd
    opts = quick(run=tiny_run, out=tmp_path / "remote", host=alias, ssh_config=config, remote_python=sys.executable,
                 reference=False)
    doc, paths = bench(CPU, opts)
    assert doc["host"] == alias
    assert [r["status"] for r in doc["records"]] == ["ok"] * 4, [r.get("error") for r in doc["records"]]
    assert all(r["host"] == alias and r["accuracy"]["n"] == 16 for r in doc["records"])
    jsonschema.validate(json.loads(paths["json"].read_text()), SCHEMA)


def test_remote_hosts_are_validated_before_any_shell_sees_them(tiny_run, tmp_path, cli):
    r = cli("bench", "--target", "cpu", "--run", str(tiny_run), "--quick", "--host", "a;rm -rf ~",
            "--out", str(tmp_path))
    assert r.returncode == 2 and "bad host 'a;rm -rf ~'" in r.stderr and "Traceback" not in r.stderr


def test_jetson_without_device_or_tensorrt_explains_what_to_set(tiny_run, cli):
    pytest.importorskip("onnxruntime")
    if __import__("importlib").util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed here")
    r = cli("bench", "--target", "jetson", "--artifact", str(tiny_run / "exports/model.int8.onnx"), "--quick")
    assert r.returncode == 2, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "host: user@device" in line and "on the device itself" in line


def test_bench_without_a_run_benches_the_latest(tiny_run, tmp_path, cli):
    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "latest").symlink_to(tiny_run, target_is_directory=True)
    r = cli("bench", "--target", "cpu", "--quick", "--trials", "1", "--eval-images", "8", "--batch-sizes", "1",
            "--quiet", "--out", str(tmp_path / "o"), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "teacher int8" in r.stdout and (tmp_path / "o/report.html").stat().st_size > 0


def test_latency_statistics_and_warnings():
    rng = np.random.default_rng(0)
    steady = summarize_latency([list(1 + 0.001 * rng.standard_normal(400)) for _ in range(3)])
    assert abs(steady["p50"] - 1) < 0.01 and steady["p50_ci95"][0] <= steady["p50"] <= steady["p50_ci95"][1]
    assert latency_warnings(steady) == []
    noisy = summarize_latency([list(1 + 0.3 * rng.random(40))])
    warnings = " ".join(latency_warnings(noisy))
    assert "high variation" in warnings and "too few samples for p99: 40 < 500" in warnings


def test_pareto_frontier_keeps_only_undominated_points():
    pts = [{"p50": 1, "nme": 5}, {"p50": 2, "nme": 6}, {"p50": 3, "nme": 3}, {"p50": 4, "nme": 3.5}]
    assert [(p["p50"], p["nme"]) for p in frontier(pts)] == [(1, 5), (3, 3)]
