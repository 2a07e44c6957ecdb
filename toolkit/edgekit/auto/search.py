"""Run the auto grid within a time budget, measure every artifact side by side, and choose.

Each grid point is an ordinary compress run in `<run dir>/<point>/` (cached like any run, so a rerun resumes).
Every artifact the target can run, from every point, plus the teacher's FP32 ONNX, is then benched in one
interleaved sweep on the target: latencies from one sweep are comparable, latencies from separate runs on a
shared machine are not. The budget is --latency-budget-ms, else the target's `latency_budget_ms` (p50, and p90
where it sets one), else 1/8 of the teacher's FP32 p50 from that same sweep. The choice is the lowest NME with
p50 under the budget (among NMEs within a tie, the fastest: `auto/choice.py`); `auto.json` (`edgekit-auto/1`)
holds every point, the front and the choice, and `bench/<target>/pareto.png` plots the front with the budget.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..artifact_record import Status
from ..config.recipe import DataSpec
from ..config.target import Target
from ..errors import EdgekitError
from .grid import GRID, PHOTO_DATA, STAGES, Point
from .result import AutoPoint, AutoResult

if TYPE_CHECKING:
    from ..run_manifest import RunManifest

DEFAULT_BUDGET_FRACTION = 1 / 8  # of the teacher's FP32 p50, when no --latency-budget-ms is given
MEASURE_RESERVE_S = 180.0  # kept free in the time budget for the final sweep


@dataclass
class AutoRun:
    target: Target
    run_dir: Path
    latency_budget_ms: float | None = None
    time_budget_s: float = 30 * 60
    teacher: str = "zoo:facial68-teacher"
    data: DataSpec = field(default_factory=lambda: PHOTO_DATA.model_copy(deep=True))
    grid: tuple[Point, ...] = GRID
    stages: dict = field(default_factory=lambda: dict(STAGES))  # per kind, the config every point uses
    seed: int = 0
    workers: int = 1
    progress: bool = True
    eval_images: int = 500
    executor: str = "sequential"  # or ray[:ADDRESS]: the points as Ray tasks (auto/ray_executor.py)


def compress_points(run: AutoRun, log) -> tuple[list[tuple[Point, Path, RunManifest]], list[dict]]:
    """Compress grid points in order until the next one would not fit the time budget."""
    from ..pipeline import CompressRun, compress

    start, done, skipped, longest = time.monotonic(), [], [], 0.0
    for point in run.grid:
        elapsed = time.monotonic() - start
        if done and elapsed + longest + MEASURE_RESERVE_S > run.time_budget_s:
            skipped.append({"point": point.name, "reason": f"time budget: {elapsed / 60:.1f} of "
                                                           f"{run.time_budget_s / 60:.0f} min used"})
            continue
        log(f"auto: point {point.name} ({len(done) + 1}/{len(run.grid)})")
        t0 = time.monotonic()
        recipe = point.recipe(run.teacher, run.data, run.stages)
        manifest = compress(CompressRun(recipe=recipe, run_dir=run.run_dir / point.name, targets=[run.target],
                                        progress=run.progress, seed=run.seed, workers=run.workers, deploy=False))
        longest = max(longest, time.monotonic() - t0)
        done.append((point, run.run_dir / point.name, manifest))
    return done, skipped


def measure(run: AutoRun, done: list[tuple[Point, Path, RunManifest]], once_per_content: bool = False) -> dict:
    """One interleaved sweep over every point's artifacts and the teacher's FP32 ONNX. With `once_per_content`, a
    file whose bytes equal a file already in the sweep is one model: it is not measured again, and its records
    are its twin's."""
    from ..bench.api import BenchOptions, bench_cells
    from ..bench.protocol import DEPLOY
    from ..bench.sweep import discover
    from ..hashing import sha256_file

    cells, twins, preprocess, first = [], [], None, {}  # first: SHA-256 -> the file measured for it
    for i, (point, run_dir, _) in enumerate(done):
        found, pre = discover(run_dir, run.target, reference=i == 0)
        preprocess = preprocess or pre
        for c in found:
            c.variant = c.variant if c.variant == "teacher" else point.name
            if once_per_content:
                twin = first.setdefault(sha256_file(c.artifact), c.artifact)
                if twin != c.artifact:
                    twins.append((c, twin))
                    continue
            cells.append(c)
    opts = BenchOptions(protocol=replace(DEPLOY, eval_images=run.eval_images), progress=run.progress,
                        data=run.data.eval)
    doc = bench_cells(run.target, cells, preprocess, opts)
    for c, twin in twins:
        doc["records"] += [{**r, "variant": c.variant, "artifact": str(c.artifact), "twin_of": str(twin)}
                           for r in doc["records"] if r["artifact"] == str(twin) and r["runtime"] == c.runtime]
    return doc


def summarise(run: AutoRun, doc: dict, done: list[tuple[Point, Path, RunManifest]],
              skipped: list[dict]) -> AutoResult:
    from .choice import choose, front, ties

    macs = {point.name: manifest.final.macs for point, _, manifest in done}
    # The teacher's cells are its FP32 ONNX file (the run's source step), on whichever runtime the target has.
    teacher = next((r for r in doc["records"] if r["variant"] == "teacher" and r["status"] == Status.OK
                    and r.get("latency")), None)
    target_budget = run.target.latency_budget_ms
    if run.latency_budget_ms is not None:
        budget, source = run.latency_budget_ms, "--latency-budget-ms"
    elif target_budget is not None and target_budget.p50 is not None:
        budget, source = target_budget.p50, f"target {run.target.name}: latency_budget_ms.p50"
    elif teacher is not None:
        budget, source = teacher["latency"]["p50"] * DEFAULT_BUDGET_FRACTION, "1/8 of the teacher's FP32 p50"
    else:
        raise EdgekitError("auto: the teacher's FP32 ONNX did not run on this target, so there is no default "
                           "budget; give --latency-budget-ms")
    points = []
    for r in doc["records"]:
        if r["variant"] == "teacher":
            continue
        lat, acc = r.get("latency") or {}, r.get("accuracy") or {}
        points.append(AutoPoint(point=r["variant"], file=str(Path(r["artifact"]).relative_to(run.run_dir)),
                                format=r["format"], precision=r["precision"], runtime=r["runtime"],
                                status=r["status"], p50_ms=lat.get("p50"), p90_ms=lat.get("p90"), nme=acc.get("nme"),
                                p50_ci95_ms=lat.get("p50_ci95"),
                                size_bytes=r.get("size_bytes"), macs=macs.get(r["variant"])))
    measured = [p for p in points if p.status == Status.OK and p.p50_ms is not None and p.nme is not None]
    under = [p for p in measured if p.p50_ms <= budget and _meets_tails(p, target_budget)]
    return AutoResult(target=run.target.name, budget_ms=budget, budget_source=source,
                      teacher_p50_ms=teacher["latency"]["p50"] if teacher else None,
                      teacher_nme=(teacher.get("accuracy") or {}).get("nme") if teacher else None,
                      points=points, front=[p.label for p in front(measured)], chosen=choose(under), ties=ties(),
                      skipped=skipped,
                      fingerprint=next((r.get("fingerprint") for r in doc["records"] if r.get("fingerprint")), None))


def _meets_tails(point: AutoPoint, budget) -> bool:
    """The target's p90 budget, where it sets one, holds too (p99 is not measured by the short protocol)."""
    limit = getattr(budget, "p90", None) if budget is not None else None
    return limit is None or point.p90_ms is None or point.p90_ms <= limit


def measure_side_by_side(runs: list[AutoRun], log=print) -> list[AutoResult]:
    """Several runs of one grid (two executors, two machines' compressions) measured in ONE interleaved sweep and
    each summarised from it: the only fair way to compare their fronts, since latencies of separate sweeps on a
    shared machine differ by more than the ties. Byte-identical files are one model, measured once for all runs.
    Each run's points must be compressed already (their manifests are read); nothing is written."""
    from ..bench.api import BenchOptions, check_reachable
    from ..run_manifest import RunManifest

    check_reachable(runs[0].target, BenchOptions())
    done_by_run = [[(p, r.run_dir / p.name, RunManifest.read(r.run_dir / p.name)) for p in r.grid] for r in runs]
    # Tell the runs' points apart in the one sweep by prefixing their names (the teacher is measured once).
    tagged = [(replace(p, name=f"{i}:{p.name}"), d, m) for i, done in enumerate(done_by_run) for p, d, m in done]
    log(f"auto: measuring {len(runs)} runs of the grid side by side")
    doc = measure(runs[0], tagged, once_per_content=True)
    results = []
    for i, (run, done) in enumerate(zip(runs, done_by_run, strict=True)):
        records = [r if r["variant"] == "teacher" else {**r, "variant": r["variant"].partition(":")[2]}
                   for r in doc["records"] if r["variant"] == "teacher" or r["variant"].startswith(f"{i}:")]
        results.append(summarise(run, {**doc, "records": records}, done, []))
    return results


def run_auto(run: AutoRun, log=print) -> AutoResult:
    """Compress the grid, measure, choose; writes auto.json and the bench report with the front plotted."""
    from ..bench.api import BenchOptions, check_reachable
    from ..bench.report import write_outputs
    from .ray_executor import compress_points_on_ray, parse_executor

    kind, address = parse_executor(run.executor)
    check_reachable(run.target, BenchOptions())  # before the grid's minutes, not after them
    started = time.monotonic()
    if kind == "ray":
        done, skipped = compress_points_on_ray(run, address, log, MEASURE_RESERVE_S)
    else:
        done, skipped = compress_points(run, log)
    log("auto: measuring every artifact side by side")
    doc = measure(run, done)
    result = summarise(run, doc, done, skipped)
    doc["latency_budget_ms"] = result.budget_ms  # the Pareto plot draws it
    result.bench = {k: str(v) for k, v in write_outputs(doc, run.run_dir / "bench" / run.target.name).items()}
    result.wall_s = round(time.monotonic() - started, 1)
    result.write(run.run_dir)
    return result
