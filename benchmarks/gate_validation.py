"""Does `edgekit gate` fail what it should, and only that, on the models it gates and under noise?

    .venv/bin/python benchmarks/gate_validation.py [--aa-runs 50] [--detect-runs 20] [--noisy-runs 20]

Models (each gated with CI's 12 blocks, `--eval-images 0`):
  ci      the model CI gates (benchmarks/baselines/ci-cpu.int8.onnx, ~0.3 ms on one core);
  5ms     the shipped teacher's FP32 ONNX (zoo:facial68-teacher, 181 MMACs; a few ms on one core);
  128px   a 5-point landmarker on 128x128 input (defined below), to show the gate runs any input shape.
Candidates differ from the baseline by real compute in the graph (`edgekit.bench.slowdown.add_extra_gemm`),
never a sleep: baseline = model + a product of `BASE_WIDTH` columns; slower = a wider one. The width for each
target slowdown is calibrated from two measured widths (the cost is about linear in the width), and every true
ratio is then measured interleaved in one process over 30 rounds, before and after, and recorded.

Scenarios: A/A (baseline against itself), true +12% and +16%, and a noisy A/A arm: CPU burners (two processes
that alternate busy and idle at random, each bounded by the gate's own run) started with the gate, against a true
+25% candidate. Each run is `edgekit gate` in a fresh process with its own block-order seed; its exit code
(0 pass, 1 regression, 3 inconclusive), ratio, p and threshold go to `benchmarks/gate_validation.json`,
written atomically after every scenario.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from edgekit.atomic import write_json
from edgekit.bench.runner import model_input
from edgekit.bench.slowdown import add_extra_gemm
from edgekit.fingerprint import fingerprint
from edgekit.runtime import load

HERE = Path(__file__).resolve().parent
BASE_WIDTH = 40


def true_ratios(paths: dict[str, Path], rounds: int = 30, runs: int = 100) -> dict[str, float]:
    """Median over rounds of each file's p50 over the baseline's, all in one process, interleaved per round."""
    sessions = {k: load(p) for k, p in paths.items()}
    x = model_input(sessions["baseline"], None)  # the model's own input, as the gate's runner feeds it
    per_round: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for k, s in sessions.items():
            for _ in range(10):
                s.run(x)
            t = []
            for _ in range(runs):
                a = time.perf_counter()
                s.run(x)
                t.append(time.perf_counter() - a)
            per_round[k].append(statistics.median(t))
    base = per_round["baseline"]
    out = {k: round(statistics.median(v[i] / base[i] for i in range(rounds)), 4) for k, v in per_round.items()}
    out["baseline_p50_ms"] = round(1000 * statistics.median(base), 4)
    return out


def calibrated_width(model: Path, work: Path, target: float) -> int:
    """The gemm width that makes model+gemm(width) `target` x model+gemm(BASE_WIDTH), from two measured widths."""
    probe = {"baseline": add_extra_gemm(model, work / "cal-base.onnx", BASE_WIDTH),
             "wide": add_extra_gemm(model, work / "cal-wide.onnx", BASE_WIDTH + 400)}
    r = true_ratios(probe, rounds=10)["wide"]
    per_column = (r - 1) / 400
    return max(BASE_WIDTH + 1, round(BASE_WIDTH + (target - 1) / per_column))


def _burn(until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.time() < until:
        busy_until = time.time() + rng.uniform(0.2, 1.5)
        while time.time() < min(busy_until, until):
            math.sqrt(rng.random())
        time.sleep(rng.uniform(0.1, 1.0))


def gate_run(baseline: Path, cand: Path, blocks: int, seed: int, noisy_s: float = 0.0) -> dict:
    burners = []
    if noisy_s:  # bounded in time, and stopped when the gate ends
        until = time.time() + noisy_s
        burners = [mp.Process(target=_burn, args=(until, seed * 10 + i), daemon=True) for i in range(2)]
        for b in burners:
            b.start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "gate.json"
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "gate", "--baseline", str(baseline),
                                   "--candidate", str(cand), "--blocks", str(blocks), "--seed", str(seed),
                                   "--eval-images", "0", "--out", str(out)], capture_output=True, text=True,
                                  timeout=1800)
            report = json.loads(out.read_text()) if out.exists() else {}
    finally:
        for b in burners:
            b.terminate()
            b.join()
    lat = report.get("latency", {})
    aa = report.get("aa") or {}
    return {"seed": seed, "exit": proc.returncode, "wall_s": round(time.perf_counter() - t, 1),
            "ratio": lat.get("ratio"), "ci95": lat.get("ratio_ci95"), "p_value": lat.get("p_value"),
            "threshold": lat.get("threshold"), "aa_drift": aa.get("drift"), "aa_spread": aa.get("spread"),
            "reason": lat.get("reason"), "stderr": proc.stderr.strip().splitlines()[-1:] if proc.returncode == 2
            else []}


def five_point_128(path: Path) -> Path:
    import torch
    from torch import nn

    from edgekit.convert.onnx import export_onnx

    torch.manual_seed(0)
    body = nn.Sequential(nn.Conv2d(3, 32, 3, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 3, 2, 1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10), nn.Sigmoid())
    return export_onnx(body, path, (1, 3, 128, 128), ["landmarks"])


def teacher_onnx(path: Path) -> Path:
    from edgekit.convert.onnx import export_onnx
    from edgekit.models.checkpoint import load_checkpoint, resolve

    model, meta = load_checkpoint(resolve("zoo:facial68-teacher"))
    return export_onnx(model.float(), path, (1, 3, meta.input_size, meta.input_size), ["landmarks", "states"])


def scenario(results: dict, out: Path, key: str, baseline: Path, cand: Path, runs: int, blocks: int,
             noisy_s: float = 0.0, first_seed: int = 0) -> None:
    if runs <= 0:
        return
    rows = []
    for seed in range(first_seed, first_seed + runs):
        r = gate_run(baseline, cand, blocks, seed, noisy_s)
        rows.append(r)
        print(f"{key} seed {seed}: exit {r['exit']} ratio {r['ratio']} p {r['p_value']} threshold {r['threshold']}"
              f" aa {r['aa_drift']}/{r['aa_spread']} {r['reason'] or ''}", flush=True)
    codes = [r["exit"] for r in rows]
    results["scenarios"][key] = {"runs": len(rows), "failures": codes.count(1), "passes": codes.count(0),
                                 "inconclusive": codes.count(3),
                                 "errors": len(codes) - codes.count(0) - codes.count(1) - codes.count(3),
                                 "median_wall_s": statistics.median(r["wall_s"] for r in rows), "rows": rows}
    write_json(out, results)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ci,5ms,128px")
    ap.add_argument("--aa-runs", type=int, default=50)
    ap.add_argument("--detect-runs", type=int, default=20)
    ap.add_argument("--noisy-runs", type=int, default=20)
    ap.add_argument("--shape-runs", type=int, default=3, help="A/A and +25%% runs on the 128px model")
    ap.add_argument("--blocks", type=int, default=12)
    ap.add_argument("--noisy-s", type=float, default=120.0, help="how long the burners may run per gate")
    ap.add_argument("--first-seed", type=int, default=0, help="block-order seed of the first run (a second batch "
                    "continues where the first stopped)")
    ap.add_argument("--out", default=str(HERE / "gate_validation.json"))
    args = ap.parse_args()
    out = Path(args.out)
    work = Path(tempfile.mkdtemp(prefix="edgekit-gate-validation-"))
    sources = {"ci": lambda: HERE / "baselines" / "ci-cpu.int8.onnx", "5ms": lambda: teacher_onnx(work / "t.onnx"),
               "128px": lambda: five_point_128(work / "p.onnx")}
    results = {"command": " ".join(["benchmarks/gate_validation.py", *sys.argv[1:]]), "fingerprint": fingerprint(),
               "date": time.strftime("%Y-%m-%d"), "blocks": args.blocks, "base_width": BASE_WIDTH, "models": {},
               "scenarios": {}}
    for name in args.models.split(","):
        model = sources[name]()
        slow = (0.25,) if name == "128px" else (0.12, 0.16, 0.25) if name == "ci" else (0.12,)
        paths = {"baseline": add_extra_gemm(model, work / f"{name}-base.onnx", BASE_WIDTH)}
        widths = {}
        for s in slow:
            widths[s] = calibrated_width(model, work, 1 + s)
            paths[f"+{round(100 * s)}%"] = add_extra_gemm(model, work / f"{name}-{s}.onnx", widths[s])
        before = true_ratios(paths)
        results["models"][name] = {"model": str(model), "widths": {f"+{round(100 * s)}%": w for s, w in
                                                                   widths.items()}, "true_ratios": before}
        print(name, "true ratios (before):", json.dumps(before), flush=True)
        write_json(out, results)
        base, seed0 = paths["baseline"], args.first_seed
        if name == "128px":
            scenario(results, out, f"{name} A/A", base, base, args.shape_runs, args.blocks, first_seed=seed0)
            scenario(results, out, f"{name} +25%", base, paths["+25%"], args.shape_runs, args.blocks, first_seed=seed0)
        else:
            scenario(results, out, f"{name} A/A", base, base, args.aa_runs, args.blocks, first_seed=seed0)
            scenario(results, out, f"{name} +12%", base, paths["+12%"], args.detect_runs, args.blocks, first_seed=seed0)
        if name == "ci":
            scenario(results, out, f"{name} +16%", base, paths["+16%"], args.detect_runs, args.blocks, first_seed=seed0)
            scenario(results, out, f"{name} noisy A/A arm, +25%", base, paths["+25%"], args.noisy_runs, args.blocks,
                     noisy_s=args.noisy_s, first_seed=seed0)
        results["models"][name]["true_ratios_after"] = true_ratios(paths)
        write_json(out, results)
    summary = {k: {kk: v[kk] for kk in ("runs", "failures", "passes", "inconclusive", "errors", "median_wall_s")}
               for k, v in results["scenarios"].items()}
    print(json.dumps({"models": {k: {kk: v[kk] for kk in ("widths", "true_ratios", "true_ratios_after")}
                                 for k, v in results["models"].items()}, "scenarios": summary}, indent=2))


if __name__ == "__main__":
    main()
