"""The gate never passes what it measured as a regression (issue 25): noise, input shapes, NaN, shared files."""

import json
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

from edgekit.bench import gate as g
from edgekit.bench.decision import INCONCLUSIVE, PASS, REGRESSION, GateRule, aa_check, accuracy_verdict, paired_verdict
from edgekit.bench.slowdown import add_extra_compute
from edgekit.convert.onnx import export_onnx

RULE = GateRule()


def _blocks(center: float, spread: float, n: int = 12, seed: int = 0) -> np.ndarray:
    return center * (1 + spread * np.random.default_rng(seed).standard_normal(n))


def test_a_clean_slowdown_fails_even_when_the_a_a_arm_is_noisy():
    # The case: the A/A arm is wide (its CI half-width pushes the noise threshold to ~0.27), while the
    # candidate is a clean 1.25x of its own block's baseline. The old rule passed it (exit 0).
    base = _blocks(1.0, 0.01)
    cand = 1.25 * base * (1 + 0.01 * np.random.default_rng(1).standard_normal(12))
    noisy_second = base * np.exp(0.35 * np.random.default_rng(2).standard_normal(12))
    v = paired_verdict(list(base), list(cand), list(noisy_second), RULE)
    assert v["threshold"] > 0.2  # noise widened the threshold past the slowdown itself
    assert v["verdict"] == REGRESSION and v["checks"]["ci_low_over_base_threshold"]


def test_a_slowdown_only_the_noise_hides_is_inconclusive_never_pass():
    # 15% slower in noisy blocks: over the configured 10%, not provable against the noise-widened threshold.
    base = _blocks(1.0, 0.02)
    cand = 1.15 * base * np.exp(0.1 * np.random.default_rng(2).standard_normal(12))
    noisy_second = base * np.exp(0.35 * np.random.default_rng(2).standard_normal(12))
    v = paired_verdict(list(base), list(cand), list(noisy_second), RULE)
    assert v["ratio"] - 1 > RULE.threshold and v["threshold"] > v["ratio"] - 1
    assert v["verdict"] == INCONCLUSIVE


def test_the_a_a_check_looks_at_spread_as_well_as_drift():
    first = _blocks(1.0, 0.01)
    # Median ratio exactly 1 (no drift), but half the blocks 30% off each way: the spread says "too noisy".
    second = first * np.array([1.3, 1 / 1.3] * 6)
    check = aa_check(list(first), list(second), RULE)
    assert check["drift"] < RULE.aa_drift and check["spread"] > RULE.aa_spread and not check["steady"]
    assert aa_check(list(first), list(first * 1.001), RULE)["steady"]


@pytest.mark.parametrize("base, cand", [(0.05, float("nan")), (float("nan"), 0.05), (0.05, None), (None, 0.05)])
def test_a_missing_or_nan_nme_is_a_failure_to_measure_not_a_pass(base, cand):
    v = accuracy_verdict(base, cand, RULE)
    assert v["verdict"] == INCONCLUSIVE and "not measured" in v["reason"]
    assert accuracy_verdict(None, None, RULE, expected=False)["verdict"] == PASS


def test_candidate_and_baseline_from_one_revision_never_share_a_file(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.onnx").write_bytes(b"model a")
    (repo / "b.onnx").write_bytes(b"model b")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(repo)]
    for args in (["init", "-q"], ["add", "."], ["commit", "-qm", "x"]):
        subprocess.run(git + args, check=True)
    monkeypatch.chdir(repo)
    work = tmp_path / "work"
    work.mkdir()
    cand = g.resolve_artifact("git:HEAD:a.onnx", work, role="candidate")
    base = g.resolve_artifact("git:HEAD:b.onnx", work, role="baseline")
    assert cand != base and cand.read_bytes() == b"model a" and base.read_bytes() == b"model b"
    same = g.resolve_artifact("git:HEAD:a.onnx", work, role="baseline")
    assert same != cand and cand.read_bytes() == b"model a"


class _FivePoints(nn.Module):
    """A 5-point landmarker on 128x128 input: nothing like the 112x112 68-point default."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.ReLU(), nn.Conv2d(16, 16, 3, 2, 1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10), nn.Sigmoid())

    def forward(self, x):
        return self.body(x).view(-1, 5, 2)


@pytest.fixture(scope="module")
def model_128(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("m128") / "five128.onnx"
    return export_onnx(_FivePoints(), path, (1, 3, 128, 128), ["landmarks"])


def test_a_128px_five_point_model_gates_from_its_own_input_shape(model_128, tmp_path, cli):
    slow = add_extra_compute(model_128, tmp_path / "slow.onnx", channels=16)  # about 2.7x the MACs: cheap to run
    r = cli("gate", "--baseline", str(model_128), "--candidate", str(slow), "--blocks", "8", "--eval-images", "0",
            "--out", str(tmp_path / "gate.json"))
    assert r.returncode == 1, r.stdout + r.stderr  # was: exit 2 "baseline does not run" at the 112x112 default
    assert json.loads((tmp_path / "gate.json").read_text())["latency"]["ratio"] > 1.25
    r = cli("gate", "--baseline", str(model_128), "--candidate", str(model_128), "--input-shape", "1,3,128")
    assert r.returncode == 2 and "expected four positive integers" in r.stderr


def test_a_runner_crash_that_names_no_arm_is_not_blamed_on_the_candidate(model_128):
    m = g._Measurer(g.GateOptions(runtime="--not-an-argument"), None)  # the runner exits in argparse: no arm
    got = g._interleaved_blocks(m, model_128, model_128, 1, __import__("random").Random(0),
                                {"baseline": 0.05, "candidate": 0.05})
    assert "runner" in got["errors"] and "candidate" not in got["errors"] and "baseline" not in got["errors"]


def test_arms_with_different_input_shapes_name_the_arm_that_differs(model_128, tiny_run):
    m = g._Measurer(g.GateOptions(), None)
    r = m.interleaved([model_128, tiny_run / "exports/model.fp32.onnx"], seed=0)
    assert not r["ok"] and r["failed_arm"] == 1 and "differs from the first arm" in r["error"]


def test_the_interval_of_three_trials_covers_the_true_median_95_percent_of_the_time():
    from edgekit.bench.stats import bootstrap_ci, p50_interval

    rng = np.random.default_rng(0)
    true_p50, draws = 1.0, 1000
    t_hits = boot_hits = 0
    for _ in range(draws):
        trials = true_p50 * np.exp(0.05 * rng.standard_normal(3))  # per-trial medians, as the bench runs 3
        lo, hi = p50_interval(trials)
        t_hits += lo <= true_p50 <= hi
        blo, bhi = bootstrap_ci(trials)
        boot_hits += blo <= true_p50 <= bhi
    assert 0.93 <= t_hits / draws <= 0.97, t_hits / draws
    assert boot_hits / draws < 0.8  # the old percentile bootstrap over 3 medians: [min, max], about 0.75


def test_a_stored_baseline_is_compared_only_on_the_same_evaluation_data(tiny_run, tmp_path, cli):
    from edgekit.bench.gate_stored import BASELINE_SCHEMA

    path = tmp_path / "cpu.json"
    art = tiny_run / "exports/model.fp32.onnx"
    r = cli("gate", "--update-baseline", str(path), "--candidate", str(art), "--blocks", "5", "--eval-images", "16")
    assert r.returncode == 0, r.stderr
    doc = json.loads(path.read_text())
    assert doc["schema"] == BASELINE_SCHEMA and doc["eval"]["images"] == 16 and len(doc["eval"]["sha256"]) == 64
    assert doc["preprocess"]["input_size"] == 112 and doc["fingerprint"]["cores"] and "cpu_id" in doc["fingerprint"]
    r = cli("gate", "--stored", str(path), "--candidate", str(art), "--eval-images", "12")
    assert r.returncode == 2 and "evaluation data differs from the baseline's (images: baseline 16, here 12" \
        in r.stderr, r.stderr
    r = cli("gate", "--stored", str(path), "--candidate", str(art), "--eval-images", "16", "--data", "synth@3:test")
    assert r.returncode == 2 and "data: baseline 'synth:test', here 'synth@3:test'" in r.stderr
