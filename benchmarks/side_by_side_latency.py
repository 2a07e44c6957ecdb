"""A run's teacher against its exported students, side by side: p50 and the ratio to the teacher, per round.

    .venv/bin/python benchmarks/side_by_side_latency.py RUN_DIR [--rounds 15] [--runs 60]

ONNX Runtime and LiteRT (XNNPACK), 1 thread, batch 1. Every model runs `runs` timed inferences per round (after 10
warm-ups), the models alternating round by round so drift on a shared machine hits all alike; the figure is the
median over rounds of each round's median, and the ratio is taken per round. Includes files whose export parity
failed (bench skips those), so an INT8 file's speed is known even when its accuracy is not acceptable.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from edgekit.fingerprint import fingerprint
from edgekit.runtime.litert import LiteRTSession
from edgekit.runtime.ort import OrtSession


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run_dir", type=Path)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--runs", type=int, default=60)
    args = ap.parse_args()
    files = {"teacher fp32 onnx": args.run_dir / "00-teacher" / "model.fp32.onnx"}
    files.update({f"student {p.name}": p for p in sorted((args.run_dir / "exports").glob("model.*"))
                  if p.suffix in (".onnx", ".tflite")})
    sessions = {k: (OrtSession(p, threads=1) if p.suffix == ".onnx" else LiteRTSession(p, threads=1))
                for k, p in files.items()}
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 112, 112)).astype(np.float32)
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(args.rounds):
        for k, s in sessions.items():
            for _ in range(10):
                s.run(x)
            t = []
            for _ in range(args.runs):
                start = time.perf_counter()
                s.run(x)
                t.append(time.perf_counter() - start)
            times[k].append(1000 * statistics.median(t))
    base = times["teacher fp32 onnx"]
    rows = {k: {"p50_ms": statistics.median(v),
                "ratio": statistics.median(a / b for a, b in zip(v, base, strict=True))}
            for k, v in times.items()}
    print(json.dumps({"rows": rows, "fingerprint": fingerprint().get("cpu")}, indent=1))
    for k, r in rows.items():
        print(f"| {k} | {r['p50_ms']:.3f} ms | {r['ratio']:.3f} |")


if __name__ == "__main__":
    main()
