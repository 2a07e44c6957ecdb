"""Harness overhead: the p50 `edgekit bench` reports against a bare loop over the same runtime API.

    .venv/bin/python benchmarks/bench_overhead.py --artifact runs/distill_int8/exports/model.int8.onnx [--rounds 10]

Each round runs one bench trial (`python -m edgekit.bench.runner`, the full protocol) and one bare loop (a plain
`onnxruntime.InferenceSession` with the same thread and spinning options, the same warm-up and run count), each in
a fresh process, in alternating order. The figure is the median over rounds of bench p50 / bare p50 (bar: within
3%).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

BARE = r"""
import statistics, sys, time
import numpy as np, onnxruntime as ort
path = sys.argv[1]
warm_runs, warm_s, runs, min_s = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5])
o = ort.SessionOptions(); o.intra_op_num_threads = 1; o.inter_op_num_threads = 1
o.add_session_config_entry("session.intra_op.allow_spinning", "0")
s = ort.InferenceSession(path, o, providers=["CPUExecutionProvider"])
name = s.get_inputs()[0].name
x = np.random.default_rng(0).standard_normal((1, 3, 112, 112)).astype(np.float32)
def loop(n, secs):
    t = []; start = time.perf_counter()
    while len(t) < n or time.perf_counter() - start < secs:
        a = time.perf_counter(); s.run(None, {name: x}); t.append(time.perf_counter() - a)
    return t
loop(warm_runs, warm_s)
print(1000 * statistics.median(loop(runs, min_s)))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--rounds", type=int, default=10)
    args = ap.parse_args()
    from edgekit.bench.protocol import FULL

    p = FULL
    ratios, bench_p50, bare_p50 = [], [], []
    for i in range(args.rounds):
        order = ("bench", "bare") if i % 2 == 0 else ("bare", "bench")
        got = {}
        for which in order:
            if which == "bench":
                out = subprocess.run([sys.executable, "-m", "edgekit.bench.runner", "--artifact", args.artifact,
                                      "--threads", "1", "--protocol", json.dumps(p.to_dict())],
                                     capture_output=True, text=True, check=True).stdout
                rec = json.loads(out.split("EDGEKIT-RESULT ", 1)[1])
                got["bench"] = statistics.median(rec["latency_ms"])
            else:
                out = subprocess.run([sys.executable, "-c", BARE, args.artifact, str(p.warmup_runs), str(p.warmup_s),
                                      str(p.runs), str(p.min_s)], capture_output=True, text=True, check=True).stdout
                got["bare"] = float(out.strip())
        bench_p50.append(got["bench"])
        bare_p50.append(got["bare"])
        ratios.append(got["bench"] / got["bare"])
        print(f"round {i + 1}: bench {got['bench']:.4f} ms, bare {got['bare']:.4f} ms, ratio {ratios[-1]:.4f}",
              flush=True)
    print(json.dumps({"artifact": args.artifact, "rounds": args.rounds,
                      "bench_p50_ms_median": round(statistics.median(bench_p50), 4),
                      "bare_p50_ms_median": round(statistics.median(bare_p50), 4),
                      "ratio_median": round(statistics.median(ratios), 4),
                      "ratio_min": round(min(ratios), 4), "ratio_max": round(max(ratios), 4)}, indent=2))


if __name__ == "__main__":
    main()
