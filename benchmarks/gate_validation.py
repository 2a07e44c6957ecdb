"""Does `edgekit gate` fail what it should, and only that? 20 A/A, 20 genuinely ~15% slower, 20 ~5% faster.

    .venv/bin/python benchmarks/gate_validation.py [--model benchmarks/baselines/ci-cpu.int8.onnx] [--runs 20]

The default model is the one CI gates (the smoke student's INT8 ONNX, about 0.3 ms on one core), with the
block count CI uses (8). The candidates differ from the baseline by real compute in the graph
(`edgekit.bench.slowdown`), never a sleep:
  baseline = model + a small extra convolution (`--base-channels` at `--base-stride`),
  slower   = model + a larger extra convolution, its channel count calibrated here to be ~15% slower,
  faster   = the model alone, ~5% faster than the baseline.
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
from edgekit.bench.slowdown import add_extra_compute
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


# Extra-compute shapes tried for the slower candidate: (channels, layers, stride). Channel counts are
# multiples of 8, since ONNX Runtime's convolution cost jumps between vector widths (17 channels cost more than 16).
SLOW_SHAPES = ((8, 2, 4), (16, 2, 4), (8, 3, 4), (8, 2, 3), (8, 4, 4), (16, 3, 4))


def calibrate_slower(model: Path, baseline: Path, work: Path, target: float) -> tuple[Path, list, float]:
    """The extra-compute shape whose measured slowdown against `baseline` is closest to `target`."""
    cands = {f"{ch}x{layers}s{stride}": add_extra_compute(model, work / f"slow{ch}x{layers}s{stride}.onnx", ch,
                                                          layers, stride)
             for ch, layers, stride in SLOW_SHAPES}
    ratios = true_ratios({"baseline": baseline, **cands}, rounds=15)
    print("calibrate (channels x layers s stride -> ratio):", json.dumps(ratios), flush=True)
    name = min(cands, key=lambda k: abs(ratios[k] - target))
    ch, rest = name.split("x")
    layers, stride = rest.split("s")
    return cands[name], [int(ch), int(layers), int(stride)], ratios[name]


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
    ap.add_argument("--blocks", type=int, default=8)
    ap.add_argument("--base-channels", type=int, default=16)
    ap.add_argument("--base-stride", type=int, default=4)
    ap.add_argument("--slow-target", type=float, default=1.15)
    ap.add_argument("--out", default=str(HERE / "gate_validation.json"))
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="edgekit-gate-validation-"))
    model = Path(args.model)
    baseline = add_extra_compute(model, work / "baseline.onnx", args.base_channels, stride=args.base_stride)
    slower, slow_shape, _ = calibrate_slower(model, baseline, work, args.slow_target)
    paths = {"baseline": baseline, "slower": slower, "faster": model}
    ratios = true_ratios(paths)
    print("true ratios vs baseline:", json.dumps(ratios), flush=True)
    results = {"command": " ".join(["benchmarks/gate_validation.py", *sys.argv[1:]]), "model": str(model),
               "fingerprint": fingerprint(), "date": time.strftime("%Y-%m-%d"), "blocks": args.blocks,
               "extra_compute": {"baseline": [args.base_channels, 1, args.base_stride], "slower": slow_shape,
                                 "fields": ["channels", "layers", "stride"]},
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
    summary = {k: {kk: v[kk] for kk in ("failures", "passes", "inconclusive", "errors", "median_wall_s")}
               for k, v in results["scenarios"].items()}
    print(json.dumps({"true_ratios": ratios, "scenarios": summary}, indent=2))


if __name__ == "__main__":
    main()
