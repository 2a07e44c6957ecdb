"""`edgekit compress --recipe auto` on the same grid with the sequential and the Ray executor: the wall time of each,
and whether the front and the choice agree: as each run's own sweep found them, and with both runs measured in one
sweep (`measure_side_by_side`, byte-identical files once), the fair comparison. On one 2-core machine Ray runs two
points at a time on one thread each where the sequential executor runs one point on two threads: 2 cores are not a
cluster, so this measures the executor's overhead and agreement, not a speed-up.

    python benchmarks/auto_executors.py --out benchmarks/auto_executors.json [--target cpu] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(executor: str, run_dir: Path, target: str) -> dict:
    t = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "edgekit", "compress", "--recipe", "auto", "--target", target,
                           "--run-dir", str(run_dir), "--executor", executor, "--quiet"], capture_output=True,
                          text=True)
    wall = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"{executor}: exit {done.returncode}: {done.stderr[-2000:]}")
    auto = json.loads((run_dir / "auto.json").read_text())
    return {"executor": executor, "wall_s": round(wall, 1), "front": auto["front"],
            "chosen": auto["chosen"]["file"] if auto.get("chosen") else None,
            "points": sorted({p["point"] for p in auto["points"] if p["status"] == "ok"}),
            "skipped": auto.get("skipped", [])}


def measured_together(root: Path, target: str) -> dict:
    """Both runs (already compressed: read from their caches) measured in one sweep."""
    import filecmp
    from dataclasses import replace

    from edgekit.auto.search import AutoRun, measure_side_by_side
    from edgekit.config.catalog import find
    from edgekit.config.target import load_target

    seq = AutoRun(target=load_target(find("targets", target)), run_dir=root / "sequential", progress=False)
    ray = replace(seq, run_dir=root / "ray", executor="ray")
    a, b = measure_side_by_side([seq, ray], log=lambda _: None)
    same = [p.file for p in a.points if filecmp.cmp(seq.run_dir / p.file, ray.run_dir / p.file, shallow=False)]
    return {"front": {"sequential": a.front, "ray": b.front}, "same_front": a.front == b.front,
            "chosen": {"sequential": a.chosen.label if a.chosen else None, "ray": b.chosen.label if b.chosen else None},
            "same_choice": (a.chosen and a.chosen.label) == (b.chosen and b.chosen.label),
            "identical_files": len(same), "files": len(a.points),
            "points": [{"label": p.label, "p50_ms": (p.p50_ms, q.p50_ms), "nme": (p.nme, q.nme)}
                       for p, q in zip(a.points, b.points, strict=True)]}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--keep", type=Path, default=None, help="keep the two runs here (default: a temporary folder)")
    args = ap.parse_args()
    from edgekit.fingerprint import fingerprint

    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        results = [run(e, root / e.replace(":", "_"), args.target) for e in ("sequential", "ray")]
        one_sweep = measured_together(root, args.target)
    seq, ray = results
    doc = {"date": time.strftime("%Y-%m-%d"), "target": args.target, "runs": results,
           "same_front": seq["front"] == ray["front"], "same_choice": seq["chosen"] == ray["chosen"],
           "one_sweep": one_sweep, "fingerprint": fingerprint(), "command": " ".join(sys.argv)}
    for r in results:
        print(f"{r['executor']:>10}: {r['wall_s']:7.1f} s, points {', '.join(r['points'])}, chosen {r['chosen']}")
    print(f"separate sweeps: same front {doc['same_front']}, same choice {doc['same_choice']}")
    print(f"one sweep: same front {one_sweep['same_front']}, same choice {one_sweep['same_choice']}, "
          f"byte-identical files {one_sweep['identical_files']} of {one_sweep['files']}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
