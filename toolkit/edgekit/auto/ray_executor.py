"""`--executor ray[:ADDRESS]`: every grid point of `--recipe auto` compressed as a Ray task, on a local Ray
instance or a cluster; the measurement stays one sweep on the target afterwards (latency trials never run side by
side on one machine).

A task gets its point's recipe, the target and the run directory as plain JSON-able values and writes its run
under `<run dir>/<point>/` as the sequential executor does, so the run directory must be storage every node sees
(a shared file system on a cluster; on one machine it simply is). Each task runs with the driver's torch thread
count and reserves as many CPUs: CPU kernels reduce in an order that depends on the thread count, and a point
trained at another count is another model (on the real grid: NMEs 0.6% apart, INT8 files passing parity or
not), so only at the same count are a point's files the sequential executor's, byte for byte. To run more points
at once on one machine, lower the count (`OMP_NUM_THREADS=1`): both executors then train alike.
"""

from __future__ import annotations

import time
from pathlib import Path

from ..errors import EdgekitError

INSTALL_HINT = "pip install 'edgekit[ray]' (Ray is an optional extra)"


def parse_executor(spec: str) -> tuple[str, str | None]:
    """`sequential`, `ray` (a local instance, or the cluster RAY_ADDRESS names) or `ray:ADDRESS`."""
    kind, _, address = spec.partition(":")
    if kind not in ("sequential", "ray") or (kind == "sequential" and address):
        raise EdgekitError(f"--executor {spec!r}: expected sequential, ray or ray:ADDRESS (e.g. ray:head:6379)")
    return kind, address or None


def _compress_point(name: str, recipe: dict, target: dict, run_dir: str, seed: int, threads: int) -> str:
    """One grid point in a Ray worker: an ordinary compress run (no deploy decision: that is the sweep's)."""
    import torch

    from ..config.recipe import Recipe
    from ..config.target import Target
    from ..pipeline import CompressRun, compress

    torch.set_num_threads(threads)
    compress(CompressRun(recipe=Recipe.model_validate(recipe), run_dir=Path(run_dir), progress=False,
                         targets=[Target.model_validate(target)], seed=seed, workers=0, deploy=False))
    return name


def compress_points_on_ray(run, address: str | None, log, reserve_s: float = 0.0) -> tuple[list, list[dict]]:
    """Submit every point of `run` (an `auto.search.AutoRun`) at once; what has not finished when the time budget
    less `reserve_s` (kept for the measuring sweep) runs out is cancelled and reported as skipped. Returns
    (point, run dir, manifest) in grid order, and the skipped."""
    try:
        import ray
    except ImportError:
        raise EdgekitError(f"--executor ray needs Ray: {INSTALL_HINT}") from None
    from ..run_manifest import RunManifest

    started = ray.is_initialized() is False
    if started:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True)
    try:
        import torch

        threads = torch.get_num_threads()
        task = ray.remote(num_cpus=threads, max_retries=0)(_compress_point)
        futures = {task.remote(p.name, p.recipe(run.teacher, run.data, run.stages).model_dump(mode="json"),
                               run.target.model_dump(mode="json"), str(run.run_dir / p.name), run.seed, threads): p
                   for p in run.grid}
        log(f"auto: {len(futures)} points submitted to Ray ({ray.cluster_resources().get('CPU', 0):g} CPUs)")
        deadline = time.monotonic() + max(0.0, run.time_budget_s - reserve_s)
        pending, finished = list(futures), []
        while pending:
            ready, pending = ray.wait(pending, num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                break
            name = ray.get(ready[0])  # a task that raised raises here, with its traceback
            finished.append(name)
            log(f"auto: point {name} done ({len(finished)}/{len(futures)})")
        for ref in pending:
            ray.cancel(ref, force=True)
    finally:
        if started:
            ray.shutdown()
    done = [(p, run.run_dir / p.name, RunManifest.read(run.run_dir / p.name)) for p in run.grid
            if p.name in finished]
    skipped = [{"point": p.name, "reason": f"time budget: not finished within {run.time_budget_s / 60:.0f} min"}
               for p in run.grid if p.name not in finished]
    return done, skipped
