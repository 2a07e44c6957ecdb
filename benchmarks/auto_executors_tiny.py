"""The test suite's tiny auto grid (two points from the tests' tiny teacher, ONNX only) with the sequential and
the Ray executor, one after the other on this machine: wall times and agreement. Needs a tiny teacher checkpoint
(the test suite's `shared-teacher`, or any small .safetensors of edgekit's).

    python benchmarks/auto_executors_tiny.py --teacher /tmp/pytest-of-root/pytest-N/shared-teacher/teacher.safetensors
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from conftest import TINY_DATA, onnx_only_cpu_target  # noqa: E402 - the tests' own tiny settings
from edgekit.auto.grid import Point  # noqa: E402
from edgekit.auto.search import AutoRun, run_auto  # noqa: E402
from edgekit.config.recipe import DataSpec  # noqa: E402
from edgekit.config.target import load_target  # noqa: E402
from test_auto import TINY_STAGES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--teacher", type=Path, required=True)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        grid = (Point("small", str(args.teacher)), Point("small-p80", str(args.teacher), prune_macs_ratio=0.8))
        run = AutoRun(target=load_target(onnx_only_cpu_target(tmp)), run_dir=tmp / "seq", latency_budget_ms=100.0,
                      teacher=str(args.teacher), data=DataSpec(**TINY_DATA), grid=grid, stages=TINY_STAGES,
                      workers=0, progress=False, eval_images=32, time_budget_s=1e9)
        out = {}
        for name, r in (("sequential", run), ("ray", replace(run, run_dir=tmp / "ray", executor="ray"))):
            t = time.perf_counter()
            result = run_auto(r, log=lambda _: None)
            out[name] = (time.perf_counter() - t, result)
    for name, (wall, result) in out.items():
        nme = {p.label: round(p.nme, 5) for p in result.points}
        print(f"{name:>10}: {wall:6.1f} s wall (Ray's start included), chosen {result.chosen.label}, NME {nme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
