"""The test suite's tiny auto grid (two points from the tests' tiny teacher, ONNX only) with the sequential and
the Ray executor, one after the other on this machine: wall times, then agreement with both runs measured in one
sweep (`measure_side_by_side`): identical files, front and choice. `--threads 1` runs the sequential executor at
the thread count of Ray's tasks. Needs a tiny teacher checkpoint (the test suite's `shared-teacher`, or any small
.safetensors of edgekit's).

    python benchmarks/auto_executors_tiny.py --teacher /tmp/pytest-of-root/pytest-N/shared-teacher/teacher.safetensors
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TINY_DATA, onnx_only_cpu_target  # noqa: E402 - the tests' own tiny settings
from edgekit.auto.grid import Point  # noqa: E402
from edgekit.auto.search import AutoRun, measure_side_by_side, run_auto  # noqa: E402
from edgekit.config.recipe import DataSpec  # noqa: E402
from edgekit.config.target import load_target  # noqa: E402
from test_auto import TINY_STAGES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, required=True)
    ap.add_argument("--threads", type=int, default=None, help="torch threads of the sequential run")
    args = ap.parse_args()
    import torch

    default_threads = torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        grid = (Point("small", str(args.teacher)), Point("small-p80", str(args.teacher), prune_macs_ratio=0.8))
        run = AutoRun(target=load_target(onnx_only_cpu_target(tmp)), run_dir=tmp / "seq", latency_budget_ms=100.0,
                      teacher=str(args.teacher), data=DataSpec(**TINY_DATA), grid=grid, stages=TINY_STAGES,
                      workers=0, progress=False, eval_images=32, time_budget_s=1e9)
        out = {}
        ray_run = replace(run, run_dir=tmp / "ray", executor="ray")
        for name, r in (("sequential", run), ("ray", ray_run)):
            torch.set_num_threads(args.threads if name == "sequential" and args.threads else default_threads)
            t = time.perf_counter()
            result = run_auto(r, log=lambda _: None)
            out[name] = (time.perf_counter() - t, result)
        seq, on_ray = measure_side_by_side([run, ray_run], log=lambda _: None)
        same = [p.file for p in seq.points if filecmp.cmp(run.run_dir / p.file, ray_run.run_dir / p.file, False)]
    for name, (wall, result) in out.items():
        nme = {p.label: round(p.nme, 5) for p in result.points}
        print(f"{name:>10}: {wall:6.1f} s wall (Ray's start included), chosen {result.chosen.label}, NME {nme}")
    print(f"byte-identical files: {len(same)} of {len(seq.points)}; one sweep: same front {seq.front == on_ray.front}"
          f", same choice {seq.chosen.label == on_ray.chosen.label} ({seq.chosen.label})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
