"""`edgekit bench`: runtimes, the runner, the sweep's outputs and schema, failures, and the remote path over ssh."""

import json
import subprocess
import sys
from pathlib import Path

import jsonschema
import numpy as np
import pytest

from edgekit.bench.api import BenchOptions, bench
from edgekit.bench.stats import summarize_latency
from edgekit.config.catalog import find
from edgekit.config.target import load_target
from edgekit.hashing import sha256_file
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
        assert r["artifact_sha256"] == sha256_file(Path(r["artifact"]))  # the artifact's hash, not the sidecar's
        # The model's own memory at batch 1 is a few MiB at most, far below the runner's whole process.
        assert 0 <= r["model_rss_bytes"] < 64 * 2**20 < r["peak_rss_bytes"]
        assert set(r["throughput"]) == {"1", "8"}
        assert 0 < r["accuracy"]["nme"] < 1 and r["accuracy"]["n"] == 16
        pose = [r["accuracy"]["slices"][k]["n"] for k in ("frontal", "turned", "profile")]  # robustness slices
        assert sum(pose) == 16, r["accuracy"]["slices"]
        assert r["fingerprint"]["cpu"]["arch"]
    int8 = cells[("teacher", "int8", "tflite", "litert")]
    fp32 = cells[("teacher", "fp32", "tflite", "litert")]
    assert abs(int8["accuracy"]["nme"] - fp32["accuracy"]["nme"]) < 0.05  # same model, through its own runtime
    assert paths["pareto"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and paths["pareto"].stat().st_size > 5000
    page = paths["html"].read_text()
    assert "data:image/png;base64," in page and "teacher int8" in page and "p50 95% CI" in page
    assert "<h2>Robustness slices</h2>" in page and paths["slices"].read_bytes()[:4] == b"\x89PNG"
    assert "| variant | format | runtime | status |" in paths["table"].read_text()
    # The FPS column is the measured batch-1 throughput, not 1000 / p50.
    from edgekit.bench.report import COLUMNS, rows

    fps_col = COLUMNS.index("FPS b1")
    for row, r in zip(rows(doc), doc["records"], strict=True):
        assert row[fps_col] == f"{r['throughput']['1']['images_per_s']:.0f}"


def test_a_failing_cell_does_not_stop_the_sweep(tiny_run, tmp_path):
    bad = tmp_path / "broken.fp32.onnx"
    bad.write_bytes(b"not an onnx model")
    doc, paths = bench(CPU, quick(artifacts=[bad, tiny_run / "exports/model.int8.onnx"], out=tmp_path / "o"))
    by_file = {Path(r["artifact"]).name: r for r in doc["records"]}
    # A runtime that cannot load the file is a run failure, not a parity (validation) failure.
    assert by_file["broken.fp32.onnx"]["status"] == "run-failed"
    assert by_file["broken.fp32.onnx"]["error"]  # the runtime's own message, for the report
    assert by_file["model.int8.onnx"]["status"] == "ok"
    jsonschema.validate(doc, SCHEMA)
    assert "run-failed" in paths["table"].read_text()


def test_a_bench_whose_every_cell_fails_exits_1(tiny_run, tmp_path, cli):
    truncated = tmp_path / "model.fp32.onnx"
    truncated.write_bytes((tiny_run / "exports/model.fp32.onnx").read_bytes()[:5000])
    r = cli("bench", "--target", "cpu", "--artifact", str(truncated), "--quick", "--eval-images", "0", "--quiet",
            "--out", str(tmp_path / "o"))
    assert r.returncode == 1 and "every one of the 1 cells failed" in r.stderr, r.stdout + r.stderr
    assert (tmp_path / "o/bench.json").exists()  # the report of what failed is still written


def test_precision_is_read_from_the_graph_not_the_file_name(tiny_run, tmp_path):
    from edgekit.bench.precision import precision_of

    misnamed = tmp_path / "pct_pc.onnx"
    misnamed.write_bytes((tiny_run / "exports/model.int8.onnx").read_bytes())
    assert precision_of(misnamed, {}) == "int8"
    fp32 = tmp_path / "model.int8.onnx"  # a float model with a misleading name and sidecar
    fp32.write_bytes((tiny_run / "exports/model.fp32.onnx").read_bytes())
    assert precision_of(fp32, {"precision": "int8"}) == "fp32"
    tfl = tmp_path / "weights.tflite"
    tfl.write_bytes((tiny_run / "exports/model.int8.tflite").read_bytes())
    assert precision_of(tfl, {}) == "int8"
    tfl.write_bytes((tiny_run / "exports/model.fp32.tflite").read_bytes())
    assert precision_of(tfl, {}) == "fp32"


def test_p50_confidence_interval_comes_from_trial_medians_not_pooled_runs():
    # Three trials whose medians differ by 10%: the p50's CI must span them, not shrink to the pooled runs' width.
    rng = np.random.default_rng(0)
    trials = [list(c + 0.001 * rng.standard_normal(500)) for c in (1.0, 1.1, 1.05)]
    s = summarize_latency(trials)
    assert s["p50_ci95"][0] <= 1.0 + 0.01 and s["p50_ci95"][1] >= 1.1 - 0.01


def test_pareto_labels_never_overlap():
    import matplotlib.pyplot as plt

    from edgekit.bench.report import pareto_figure

    # Four cells within 1% of each other on both axes: inline labels used to print on top of each other.
    recs = [{"status": "ok", "variant": "student", "precision": p, "format": f, "runtime": rt,
             "latency": {"p50": 0.3 + 0.001 * i}, "accuracy": {"nme": 0.05 + 0.0001 * i}}
            for i, (p, f, rt) in enumerate([("fp32", "onnx", "onnxruntime"), ("int8", "onnx", "onnxruntime"),
                                            ("fp32", "tflite", "litert"), ("int8", "tflite", "litert")])]
    fig = pareto_figure({"target": "cpu", "records": recs})
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    texts = [t for t in fig.findobj(plt.Text) if t.get_text() and t.get_visible()]
    labels = [t for t in texts if "student" in t.get_text()]
    assert len(labels) == 4
    boxes = [t.get_window_extent(renderer) for t in texts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert not a.overlaps(b), "two texts of the plot overlap"
    plt.close(fig)


def test_bench_of_a_run_scores_on_the_data_its_recipe_judged(tmp_path):
    """`edgekit bench --run R` without --data: the recipe's eval set when it is built in (distill_int8: v3), so
    bench's NME is the compress table's; your own folder or no manifest: SynthFaces v1 test."""
    import json

    from edgekit.bench.api import DEFAULT_DATA, run_eval_data

    def run_with(eval_spec):
        d = tmp_path / str(abs(hash(str(eval_spec))))
        d.mkdir()
        (d / "manifest.json").write_text(json.dumps({"recipe": {"data": {"eval": eval_spec}}}))
        return d

    assert run_eval_data(run_with("synth@3:test:1000")) == "synth@3:test:1000"
    assert run_eval_data(run_with("dlib-voc:test")) == "dlib-voc:test"
    assert run_eval_data(run_with(str(tmp_path / "my_faces"))) == DEFAULT_DATA == "synth:test"
    assert run_eval_data(tmp_path / "no-run") == DEFAULT_DATA
