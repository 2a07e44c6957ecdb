"""distill_int8 end to end, then the INT8 student against the FP32 teacher, side by side in one process.

    .venv/bin/python benchmarks/compress_distill_int8.py [--run-dir runs/bench_distill_int8] [--rounds 30]

1. Times `edgekit compress --recipe distill_int8 --target cpu,mobile` from an empty run directory, exports and
   their parity checks included (bar: <= 15 min on 2 cores).
2. Latency: ONNX Runtime, CPU, 1 thread, batch 1. The two models alternate in `rounds` rounds of `runs`
   inferences each, so drift on a noisy machine hits both alike; the figure is the median over rounds of each
   round's median, and the ratio is taken per round (bar: INT8 p50 <= 1/8 of the teacher's).
3. File size ratio (bar <= 1/8) and NME ratio on the recipe's eval split (bar <= 1.10).
Prints JSON and a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edgekit.fingerprint import fingerprint
from edgekit.runtime.ort import OrtSession


def median_latency_ms(session: OrtSession, x: np.ndarray, runs: int) -> float:
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        session.run(x)
        times.append(time.perf_counter() - t)
    return 1000 * statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run-dir", default="runs/bench_distill_int8")
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--target", default="cpu,mobile", help="targets to export for (their artifacts count in the time)")
    ap.add_argument("--reuse", action="store_true", help="skip the compress run if the run dir is complete")
    args = ap.parse_args()
    run = Path(args.run_dir)
    wall = None
    if not (args.reuse and (run / "manifest.json").exists()):
        shutil.rmtree(run, ignore_errors=True)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "edgekit.cli", "compress", "--recipe", "distill_int8",
                               "--run-dir", str(run), "--target", args.target, "--quiet"], check=False)
        if proc.returncode not in (0, 1):  # 1: a budget missed, everything still written (and reported below)
            sys.exit(f"compress failed with exit {proc.returncode}")
        wall = time.perf_counter() - t
    manifest = json.loads((run / "manifest.json").read_text())
    steps = {s["name"]: s for s in manifest["steps"]}
    teacher, int8 = steps["teacher"], steps["int8 (ptq)"]
    sessions = {"teacher": OrtSession(run / teacher["artifact"], threads=1),
                "int8": OrtSession(run / int8["artifact"], threads=1)}
    x = np.random.default_rng(0).normal(size=(1, 3, 112, 112)).astype(np.float32)
    for s in sessions.values():  # warm-up
        median_latency_ms(s, x, 20)
    per_round = {"teacher": [], "int8": []}
    for r in range(args.rounds):
        order = ["teacher", "int8"] if r % 2 == 0 else ["int8", "teacher"]
        for name in order:
            per_round[name].append(median_latency_ms(sessions[name], x, args.runs))
    ratios = [i / t for i, t in zip(per_round["int8"], per_round["teacher"], strict=True)]
    result = {
        "compress_wall_s": round(wall, 1) if wall is not None else None,
        "teacher_p50_ms": round(statistics.median(per_round["teacher"]), 4),
        "int8_p50_ms": round(statistics.median(per_round["int8"]), 4),
        "latency_ratio_median": round(statistics.median(ratios), 4),
        "teacher_onnx_bytes": teacher["size_bytes"],
        "int8_onnx_bytes": int8["size_bytes"],
        "size_ratio": round(int8["size_bytes"] / teacher["size_bytes"], 4),
        "teacher_nme": teacher["metrics"]["nme"],
        "int8_nme": int8["metrics"]["nme"],
        "nme_ratio": round(int8["metrics"]["nme"] / teacher["metrics"]["nme"], 4),
        "int8_float_layers": int8["extra"].get("float_layers"),
        "stage_wall_s": {s["name"]: round(s["wall_s"], 1) for s in manifest["steps"]},
        "protocol": f"ORT CPU, 1 thread, batch 1, {args.rounds} alternating rounds x {args.runs} runs",
        "cpu": fingerprint()["cpu"],
    }
    print(json.dumps(result, indent=2))
    print("\n| model | ONNX size | p50 (ms) | NME |\n| --- | --- | --- | --- |")
    print(f"| teacher FP32 | {teacher['size_bytes'] / 1e6:.2f} MB | {result['teacher_p50_ms']:.3f} | "
          f"{100 * result['teacher_nme']:.2f}% |")
    print(f"| student INT8 | {int8['size_bytes'] / 1e6:.2f} MB | {result['int8_p50_ms']:.3f} | "
          f"{100 * result['int8_nme']:.2f}% |")
    print(f"| ratio | {result['size_ratio']:.3f} | {result['latency_ratio_median']:.3f} | {result['nme_ratio']:.3f} |")
    print("\n| artifact | targets | status | size | parity max abs diff | NME change (pts) | state agreement |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for a in manifest.get("artifacts", []):
        p = a.get("parity", {})
        print(f"| {a['file']} | {','.join(a['targets'])} | {a['status']} | "
              f"{a.get('size_bytes', 0) / 1e6:.3f} MB | {p.get('landmarks_max_abs_diff', float('nan')):.2e} | "
              f"{100 * p.get('nme_change', float('nan')):+.3f} | {100 * p.get('state_agreement', float('nan')):.1f}% |")


if __name__ == "__main__":
    main()
