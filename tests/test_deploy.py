"""The deploy decision: each target gets the fastest artifact within budget, measured there (deploy.json)."""

import json
import shutil

from edgekit.bench.deploy import SCHEMA, Candidate, choose, decide, latency_misses, nme_limit
from edgekit.config.catalog import find
from edgekit.config.target import LatencyBudget, load_target


def cand(file, p50, nme=0.03, size=1000, precision="int8", status="ok"):
    return Candidate(file=file, format="onnx", precision=precision, runtime="onnxruntime", status=status,
                     p50_ms=p50, p90_ms=p50 and p50 * 1.1, nme=nme, size_bytes=size)


def test_fastest_within_the_accuracy_budget_wins_and_the_rest_say_why():
    cands = [cand("fp32", 1.0, nme=0.030, size=8000, precision="fp32"), cand("int8-fast-bad", 0.3, nme=0.040),
             cand("int8", 0.5, nme=0.031, size=2000), cand("broken", None, status="export-failed")]
    target = load_target(find("targets", "cpu"))
    limit = nme_limit(cands, target, default_increase=0.05)
    assert abs(limit - 0.0315) < 1e-9  # the best float candidate's NME x 1.05
    chosen = choose(cands, limit)
    assert chosen.file == "int8"
    bad = next(c for c in cands if c.file == "int8-fast-bad")
    assert bad.status == "over-budget" and "NME 4.00% > 3.15%" in bad.reason


def test_a_near_tie_goes_to_the_smaller_file():
    cands = [cand("big", 0.500, size=9000), cand("small", 0.505, size=1000), cand("slow", 0.6, size=10)]
    assert choose(cands, None).file == "small"  # 1% apart: a tie; 20% apart: not
    assert choose([cand("a", 1.0, nme=0.05)], 0.04) is None


def test_a_latency_budget_miss_is_named_with_its_numbers():
    misses = latency_misses(cand("m.onnx", 0.5), LatencyBudget(p50=0.4, p90=1.0))
    assert misses == ["latency_budget_ms.p50: m.onnx on onnxruntime runs 0.500 ms (budget 0.400 ms)"]
    assert latency_misses(cand("m.onnx", 0.5), None) == []


def test_compress_writes_deploy_json_and_bench_marks_the_choice(tiny_run, tmp_path, cli):
    doc = json.loads((tiny_run / "deploy.json").read_text())
    assert doc["schema"] == SCHEMA
    d = doc["targets"]["cpu"]
    assert d["status"] == "chosen" and d["fingerprint"]["cpu"]
    files = {(c["file"], c["runtime"]) for c in d["candidates"]}
    assert files == {("exports/model.fp32.onnx", "onnxruntime"), ("exports/model.int8.onnx", "onnxruntime"),
                     ("exports/model.fp32.tflite", "litert"), ("exports/model.int8.tflite", "litert")}
    eligible = [c for c in d["candidates"] if c["status"] == "ok"]
    assert d["chosen"] in eligible
    assert d["chosen"]["p50_ms"] <= min(c["p50_ms"] for c in eligible) * 1.02 + 1e-12
    manifest = json.loads((tiny_run / "manifest.json").read_text())
    assert manifest["deploy"]["cpu"]["file"] == d["chosen"]["file"]
    # bench reads deploy.json and flags that cell
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    r = cli("bench", "--run", str(run), "--target", "cpu", "--quick", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    records = json.loads((tmp_path / "b" / "bench.json").read_text())["records"]
    chosen = [x for x in records if x.get("chosen")]
    assert len(chosen) == 1 and chosen[0]["artifact"].endswith(d["chosen"]["file"].split("/")[-1])
    assert "(deploy)" in (tmp_path / "b" / "table.md").read_text()


def test_a_target_over_its_latency_budget_is_reported_and_a_gpu_target_here_is_not_measured(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cpu = load_target(find("targets", "cpu")).model_copy(update={"latency_budget_ms": LatencyBudget(p50=1e-6)})
    jetson = load_target(find("targets", "jetson"))
    doc = decide(run, [cpu, jetson], 0.05, progress=False)
    assert doc["targets"]["cpu"]["budget_missed"][0].startswith("cpu: latency_budget_ms.p50: exports/model.")
    if doc["targets"]["jetson"]["status"] == "not-measured":  # no TensorRT here (a GPU machine measures it)
        assert "cannot be benched on this machine" in doc["targets"]["jetson"]["reason"]
        assert not doc["targets"]["jetson"]["budget_missed"]
    assert json.loads((run / "deploy.json").read_text()) == json.loads(json.dumps(doc))
