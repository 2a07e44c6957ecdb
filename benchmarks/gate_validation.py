"""Does `edgekit gate` fail what it should, and only that? 20 A/A, 20 genuinely 15% slower, 20 5% faster.

    .venv/bin/python benchmarks/gate_validation.py --model runs/distill_int8/00-teacher/model.fp32.onnx [--runs 20]

The candidates differ from the baseline by real compute in the graph (`edgekit.bench.slowdown`), never a sleep:
  baseline = model + extra convolution (`--base-channels`),
  slower   = model + a larger extra convolution, sized to be ~15% slower than the baseline,
  faster   = the model alone, ~5% faster than the baseline.
Their true ratios are measured first, interleaved in one process over many rounds, and printed. Then each
scenario runs `edgekit gate --baseline ... --candidate ...` `runs` times in fresh processes (different block-order
seeds) and counts exit codes: 0 pass, 1 regression, 3 inconclusive.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgekit.bench.slowdown import add_extra_compute
from edgekit.runtime import load


def true_ratios(paths: dict[str, Path], rounds: int = 20, runs: int = 100) -> dict[str, float]:
    x = np.random.default_rng(0).standard_normal((1, 3, 112, 112)).astype(np.float32)
    sessions = {k: load(p) for k, p in paths.items()}
    per_round = {k: [] for k in paths}
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
    return {k: round(statistics.median(v[i] / base[i] for i in range(rounds)), 4) for k, v in per_round.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", required=True, help="an FP32 ONNX model of a few ms (the teacher)")
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=10)
    ap.add_argument("--base-channels", type=int, default=14)
    ap.add_argument("--slow-channels", type=int, default=60)
    ap.add_argument("--work", default="/tmp/edgekit-gate-validation")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    paths = {"baseline": add_extra_compute(args.model, work / "baseline.onnx", args.base_channels),
             "slower": add_extra_compute(args.model, work / "slower.onnx", args.slow_channels),
             "faster": work / "faster.onnx"}
    paths["faster"].write_bytes(Path(args.model).read_bytes())
    ratios = true_ratios(paths)
    print("true ratios vs baseline:", json.dumps(ratios), flush=True)
    results = {"true_ratios": ratios, "runs": args.runs, "blocks": args.blocks, "scenarios": {}}
    for name, cand in (("A/A", paths["baseline"]), ("15% slower", paths["slower"]), ("5% faster", paths["faster"])):
        codes, walls = [], []
        for seed in range(args.runs):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "gate", "--baseline", str(paths["baseline"]),
                                   "--candidate", str(cand), "--blocks", str(args.blocks), "--seed", str(seed),
                                   "--eval-images", "0"], capture_output=True, text=True)
            walls.append(time.perf_counter() - t)
            codes.append(proc.returncode)
            ratio = next((ln for ln in proc.stdout.splitlines() if "ratio" in ln), "").strip()
            print(f"{name} #{seed + 1}: exit {proc.returncode} {ratio[:150]}", flush=True)
        results["scenarios"][name] = {"exit_codes": codes, "failures": codes.count(1), "passes": codes.count(0),
                                      "inconclusive": codes.count(3), "median_wall_s": round(statistics.median(walls),
                                                                                               1)}
    print(json.dumps(results, indent=2))
    (work / "results.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
