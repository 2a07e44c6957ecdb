"""Does `edgekit gate` fail what it should, and only that? 20 A/A, 20 genuinely ~15% slower, 20 ~5% faster.

    .venv/bin/python benchmarks/gate_validation.py [--model benchmarks/baselines/ci-cpu.int8.onnx] [--runs 20]

The default model is the one CI gates (the smoke student's INT8 ONNX, about 0.3 ms on one core), with the
block count CI uses (12). The candidates differ from the baseline by real compute in the graph
(`edgekit.bench.slowdown.add_extra_gemm`), never a sleep:
  baseline = model + an extra matrix product of `--base-width` columns,
  slower   = model + a wider product (`--slow-width`), ~15% slower than the baseline,
  faster   = model + a narrower product (`--fast-width`), ~5% faster than the baseline.
The cost is about linear in the width; all three carry the product, so its fixed cost cancels out of their ratios.
Their true ratios are measured interleaved in one process over many rounds and recorded. Then each scenario runs
`edgekit gate --baseline ... --candidate ...` `runs` times in fresh processes (different block-order seeds) and
records each run's exit code (0 pass, 1 regression, 3 inconclusive), ratio and p-value in
`benchmarks/gate_validation.json` (atomic write).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from edgekit.atomic import write_json
from edgekit.bench.slowdown import add_extra_gemm
from edgekit.fingerprint import fingerprint
from edgekit.runtime import load

HERE = Path(__file__).resolve().parent


def true_ratios(paths: dict[str, Path], rounds: int = 20, runs: int = 200) -> dict[str, float]:
    x = np.random.default_rng(0).standard_normal((1, 3, 112, 112)).astype(np.float32)
    sessions = {k: load(p) for k, p in paths.items()}
    per_round: dict[str, list[float]] = {k: [] for k in paths}
    for _ in range(rounds):
        for k, s in sessions.items():
            for _ in range(20):
                s.run(x)
            t = []
            for _ in range(runs):
                a = time.perf_counter()
                s.run(x)
                t.append(time.perf_counter() - a)
            per_round[k].append(statistics.median(t))
    base = per_round["baseline"]
    return {k: round(statistics.median(v[i] / base[i] for i in range(rounds)), 4) for k, v in per_round.items()}


def gate_run(baseline: Path, cand: Path, blocks: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "gate.json"
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "gate", "--baseline", str(baseline),
                               "--candidate", str(cand), "--blocks", str(blocks), "--seed", str(seed),
                               "--eval-images", "0", "--out", str(out)], capture_output=True, text=True)
        report = json.loads(out.read_text()) if out.exists() else {}
    lat = report.get("latency", {})
    return {"seed": seed, "exit": proc.returncode, "wall_s": round(time.perf_counter() - t, 1),
            "ratio": lat.get("ratio"), "p_value": lat.get("p_value"), "threshold": lat.get("threshold"),
            "ci95": lat.get("ratio_ci95"), "aa_drift": (report.get("aa") or {}).get("drift"),
            "reason": lat.get("reason")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(HERE / "baselines" / "ci-cpu.int8.onnx"))
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--blocks", type=int, default=12)
    # Widths measured on this project's machines to make the candidates ~15% slower and ~5% faster than the
    # baseline (the cost is about linear in the width, ~0.2% of this model per column; run-to-run the ratios move
    # by a few percent, so they are measured before and after the gate runs and both are recorded).
    ap.add_argument("--base-width", type=int, default=40)
    ap.add_argument("--slow-width", type=int, default=115)
    ap.add_argument("--fast-width", type=int, default=15)
    ap.add_argument("--out", default=str(HERE / "gate_validation.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgekit-gate-validation-"))
    model = Path(args.model)
    base_width, width, fast_width = args.base_width, args.slow_width, args.fast_width
    paths = {"baseline": add_extra_gemm(model, work / "baseline.onnx", base_width),
             "slower": add_extra_gemm(model, work / "slower.onnx", width),
             "faster": add_extra_gemm(model, work / "faster.onnx", fast_width)}
    ratios = true_ratios(paths, rounds=30)
    print("true ratios vs baseline (before):", json.dumps(ratios), flush=True)
    results = {"command": " ".join(["benchmarks/gate_validation.py", *sys.argv[1:]]), "model": str(model),
               "fingerprint": fingerprint(), "date": time.strftime("%Y-%m-%d"), "blocks": args.blocks,
               "extra_compute": {"kind": "matmul (-1, 256) x (256, width)", "baseline_width": base_width,
                                 "faster_width": fast_width, "slower_width": width},
               "true_ratios": ratios, "scenarios": {}}
    for name, cand in (("A/A", paths["baseline"]), ("15% slower", paths["slower"]), ("5% faster", paths["faster"])):
        runs = []
        for seed in range(args.runs):
            r = gate_run(paths["baseline"], cand, args.blocks, seed)
            runs.append(r)
            print(f"{name} #{seed + 1}: exit {r['exit']} ratio {r['ratio']} p {r['p_value']} "
                  f"threshold {r['threshold']}", flush=True)
        codes = [r["exit"] for r in runs]
        results["scenarios"][name] = {"failures": codes.count(1), "passes": codes.count(0),
                                      "inconclusive": codes.count(3), "errors": len(codes) - codes.count(0)
                                      - codes.count(1) - codes.count(3),
                                      "median_wall_s": statistics.median(r["wall_s"] for r in runs), "runs": runs}
        write_json(Path(args.out), results)  # after each scenario, so an interrupted run keeps what it measured
    results["true_ratios_after"] = true_ratios(paths, rounds=30)  # the machine drifts: measured again at the end
    write_json(Path(args.out), results)
    summary = {k: {kk: v[kk] for kk in ("failures", "passes", "inconclusive", "errors", "median_wall_s")}
               for k, v in results["scenarios"].items()}
    print(json.dumps({"true_ratios": ratios, "true_ratios_after": results["true_ratios_after"],
                      "scenarios": summary}, indent=2))


if __name__ == "__main__":
    main()
