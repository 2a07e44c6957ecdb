"""Glue between `edgekit compress` options and the pipeline: resolve names, override data, print the table."""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

from rich.console import Console
from rich.table import Table

from .artifact_record import ArtifactRecord
from .auto.result import AutoResult
from .compress.byom import ByomSpec
from .config.catalog import find
from .config.recipe import load_recipe
from .config.target import load_target
from .errors import EdgekitError
from .pipeline import CompressRun, compress
from .run_manifest import RunManifest
from .thirdparty_log import LOG_NAME, third_party_output_to


def resolve_targets(spec: str):
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise EdgekitError("--target needs at least one target name")
    return [load_target(find("targets", n)) for n in names]


def _floats(option: str, text: str, n: int | None = None) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(","))
    except ValueError:
        raise EdgekitError(f"{option} {text!r}: expected comma-separated numbers") from None
    if n is not None and len(values) != n:
        raise EdgekitError(f"{option} {text!r}: expected {n} values")
    return values


def byom_spec(model, weights, input_shape, output_names, landmarks_output, mean, std, data, **kw) -> ByomSpec | None:
    if model is None:
        if any(v is not None for v in (weights, input_shape, output_names, landmarks_output)):
            raise EdgekitError("--weights, --input-shape, --output-names and --landmarks-output need --model")
        return None
    if data is None:
        raise EdgekitError("--model needs --data: face images to train, calibrate and check fidelity on (a folder "
                           "of crops, labeled or not, or synth)")
    shape = tuple(int(v) for v in _floats("--input-shape", input_shape)) if input_shape else None
    return ByomSpec(model, str(weights) if weights else None, shape,
                    [n.strip() for n in output_names.split(",")] if output_names else None, landmarks_output,
                    mean=_per_channel("--mean", mean), std=_per_channel("--std", std), **kw)


def _per_channel(option: str, text: str) -> tuple[float, ...]:
    values = _floats(option, text)
    if len(values) not in (1, 3):
        raise EdgekitError(f"{option} {text!r}: expected 1 or 3 comma-separated numbers")
    if option == "--std" and any(v <= 0 for v in values):
        raise EdgekitError(f"{option} {text!r}: values must be > 0")
    return values * 3 if len(values) == 1 else values


def run_compress(recipe: str, target: str, teacher: str | None, data: str | None, run_dir: Path | None, seed: int,
                 workers: int, progress: bool, console: Console, byom: ByomSpec | None = None,
                 stderr_console: Console | None = None, verbose: bool = True, deploy: bool = True,
                 eval_data: str | None = None, student: str | None = None,
                 val_data: str | None = None) -> RunManifest | None:
    """`edgekit compress`. Unless `verbose`, third-party output goes to <run dir>/log.txt, not the terminal.
    Under torchrun, ranks other than 0 print nothing and return None (rank 0 writes and reports)."""
    from .train.distributed import world

    main = world().main
    path = find("recipes", recipe)
    rec = load_recipe(path)
    if data is not None:
        rec = rec.model_copy(update={"data": rec.data.model_copy(update={"train": data, "calibration": data})})
    if student is not None:
        from .config.recipe import StudentSpec

        rec = rec.model_copy(update={"student": StudentSpec(factory=student)})
    targets = resolve_targets(target)
    out = run_dir or Path("runs") / rec.name
    if byom is not None:
        # Validation (early stopping) on --val-data, else the part of --data held out from training (ByomData),
        # against its labels or the original model; the reported figures on --eval-data when given (a labeled set
        # scores against ground truth), else on that held-out part too. The recipe's real faces are iBUG 68-point
        # sets: a model of that scheme is scored on them beside every step (and judged by max_real_nme_ratio),
        # any other scheme on your data only.
        real = rec.data.real if byom.scheme == "ibug68" else []
        rec = rec.model_copy(update={"data": rec.data.model_copy(update={"eval": eval_data or data,
                                                                          "val": val_data or data, "real": real})})
    elif val_data is not None or eval_data is not None:
        raise EdgekitError("--val-data and --eval-data are for --model (your own model); a recipe names its splits "
                           "under data:")
    capture = (contextlib.nullcontext() if verbose or stderr_console is None or not main
               else third_party_output_to(out / LOG_NAME, console, stderr_console))
    with capture:
        manifest = compress(CompressRun(recipe=rec, run_dir=out, targets=targets, teacher=teacher,
                                        progress=progress and main, seed=seed, workers=workers,
                                        recipe_path=str(path), byom=byom, deploy=deploy))
    if manifest is None:
        return None
    table = step_table if byom is None else fidelity_table
    console.print(table(manifest, title=f"{rec.name} -> {out}"))
    if manifest.artifacts:
        console.print(artifact_table(manifest.artifacts, title=f"artifacts -> {out / 'exports'}"))
    if manifest.deploy:
        console.print(deploy_table(manifest.deploy, title=f"deploy decision -> {out / 'deploy.json'}"))
    return manifest


def real_sets(manifest: RunManifest) -> list[str]:
    """The real sets any step was scored on, in order: one "NME <set>" column each."""
    return list(dict.fromkeys(k for s in manifest.steps for k in s.metrics.get("real_nme", {})))


def real_cells(step, real: list[str]) -> list[str]:
    on_real = step.metrics.get("real_nme", {})
    return [f"{100 * on_real[k]:.2f}%" if k in on_real else "" for k in real]


def step_table(manifest: RunManifest, title: str = "") -> Table:
    """Every step's size and accuracy on the evaluation split, and NME on the recipe's real faces beside it."""
    t = Table(title=title, title_justify="left")
    real = real_sets(manifest)
    for col in ("step", "params", "MMACs", "size", "NME", *(f"NME {k}" for k in real), "jaw", "brows", "nose", "eyes",
                "mouth", "state F1", "time"):
        t.add_column(col, justify="left" if col == "step" else "right")
    for s in manifest.steps:
        m = s.metrics
        r = m["region_nme"]
        t.add_row(
            s.name, f"{s.params / 1e6:.2f}M", f"{s.macs / 1e6:.1f}", f"{s.size_bytes / 1e6:.2f} MB",
            f"{100 * m['nme']:.2f}%", *real_cells(s, real),
            *(f"{100 * r[k]:.2f}" for k in ("jaw", "brows", "nose", "eyes", "mouth")),
            f"{m.get('state_f1', float('nan')):.3f}", "cached" if s.cached else f"{s.wall_s:.0f}s",
        )
    return t


def fidelity_table(manifest: RunManifest, title: str = "") -> Table:
    """Your own model's runs: size, landmark NME (against labels, or the original when unlabeled) and each other
    output's relative error against the original."""
    t = Table(title=title, title_justify="left")
    real = real_sets(manifest)
    for col in ("step", "params", "MMACs", "size", "landmark NME", *(f"NME {k}" for k in real),
                "other outputs (relative error)"):
        t.add_column(col, justify="left" if col in ("step", "other outputs (relative error)") else "right")
    for s in manifest.steps:
        m = s.metrics
        others = ", ".join(f"{k} {100 * v['relative']:.2f}%" for k, v in m.get("outputs", {}).items())
        t.add_row(s.name, f"{s.params / 1e6:.2f}M", f"{s.macs / 1e6:.1f}", f"{s.size_bytes / 1e6:.2f} MB",
                  f"{100 * m['nme']:.2f}%" if "region_nme" in m else "",
                  *real_cells(s, real), others)
    return t


def artifact_table(records: list[ArtifactRecord], title: str = "") -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("file", "targets", "status", "size", "NME", "max |diff|", "NME vs PyTorch", "NME change",
                "states agree"):
        t.add_column(col, justify="left" if col in ("file", "targets", "status") else "right")
    for r in records:
        p = r.parity or {}
        size = f"{r.size_bytes / 1e6:.2f} MB" if r.size_bytes is not None else ""
        status = r.status.value + (" (cached)" if r.cached else "")
        float_layers = r.details.get("fallback", {}).get("float_layers")
        if float_layers:  # the TFLite INT8 fallback kept these in float to meet the export budget
            status += f", {len(float_layers)} float layer{'s' if len(float_layers) > 1 else ''}"
        own = (r.accuracy or {}).get("nme")  # the file's own NME on the evaluation split, through its runtime
        t.add_row(r.file, ",".join(r.targets), status, size, f"{100 * own:.2f}%" if own is not None else "",
                  f"{p.get('landmarks_max_abs_diff', p.get('max_abs_diff_scaled', 0)):.2e}" if p else "",
                  f"{100 * p['nme_vs_pytorch']:.3f}%" if "nme_vs_pytorch" in p else "",
                  f"{100 * p['nme_change']:+.3f}" if "nme_change" in p else "",
                  f"{100 * p['state_agreement']:.1f}%" if "state_agreement" in p else "")
    return t


def deploy_table(summary: dict, title: str = "") -> Table:
    """Per target: the artifact measured fastest there within the accuracy budget; a proxy names the file it would
    pick and where it was measured, with its budgets "not verified"."""
    t = Table(title=title, title_justify="left")
    for col in ("target", "status", "choice", "runtime", "p50 ms", "NME", "of", "budget"):
        t.add_column(col, justify="right" if col in ("p50 ms", "NME", "of") else "left")
    for name, d in summary.items():
        if d["status"] not in ("chosen", "proxy"):
            t.add_row(name, d["status"], "", "", "", "", str(d["candidates"]), d.get("reason") or "")
            continue
        budget = "missed" if d["missed"] else "met"
        if d["status"] == "proxy":
            budget = f"not verified (measured on {d.get('measured_on') or 'another machine'})"
        t.add_row(name, d["status"], d["file"], d["runtime"], f"{d['p50_ms']:.3f}",
                  f"{100 * d['nme']:.2f}%" if d.get("nme") is not None else "", str(d["candidates"]), budget)
    return t


def run_auto_cli(target: str, teacher: str | None, data: str | None, run_dir: Path | None, seed: int, workers: int,
                 progress: bool, latency_budget_ms: float | None, time_budget_min: float, console: Console,
                 stderr_console: Console, verbose: bool, executor: str = "sequential") -> list[str]:
    """`edgekit compress --recipe auto`: returns the missed-budget lines (none when something fits)."""
    from .auto.grid import PHOTO_DATA
    from .auto.ray_executor import parse_executor
    from .auto.search import AutoRun, run_auto

    parse_executor(executor)  # a bad spelling stops here, before any run directory exists
    targets = resolve_targets(target)
    if len(targets) != 1:
        raise EdgekitError(f"--recipe auto measures on one target; got {len(targets)} ({target})")
    spec = PHOTO_DATA if data is None else PHOTO_DATA.model_copy(update={"train": data, "calibration": data})
    run = AutoRun(target=targets[0], run_dir=run_dir or Path("runs") / "auto", latency_budget_ms=latency_budget_ms,
                  time_budget_s=60 * time_budget_min, data=spec, seed=seed, workers=workers, progress=progress,
                  executor=executor, **({"teacher": teacher} if teacher else {}))
    fresh = not run.run_dir.exists()
    capture = (contextlib.nullcontext() if verbose
               else third_party_output_to(run.run_dir / LOG_NAME, console, stderr_console))
    try:
        with capture:
            result = run_auto(run, log=lambda line: stderr_console.print(line, highlight=False))
    except EdgekitError:
        if fresh:  # bad input leaves nothing behind, as for named recipes
            shutil.rmtree(run.run_dir, ignore_errors=True)
        raise
    console.print(auto_table(result, title=f"auto -> {run.run_dir / 'auto.json'}"))
    chosen = result.chosen
    if chosen is None:
        return [f"auto: no artifact measured under the {result.budget_ms:.3f} ms budget ({result.budget_source})"]
    console.print(f"chosen: {chosen.file} on {chosen.runtime}, p50 {chosen.p50_ms:.3f} ms (budget "
                  f"{result.budget_ms:.3f} ms, {result.budget_source}), NME {100 * chosen.nme:.2f}%",
                  highlight=False)
    return []


def auto_table(result: AutoResult, title: str = "") -> Table:
    """Every measured artifact of the auto grid, fastest first; the front and the choice marked."""
    t = Table(title=title, title_justify="left")
    for col in ("point", "artifact", "runtime", "MMACs", "size", "p50 ms", "NME", ""):
        t.add_column(col, justify="left" if col in ("point", "artifact", "runtime", "") else "right")
    front, chosen = set(result.front), result.chosen.label if result.chosen else None
    for p in sorted(result.points, key=lambda p: (p.p50_ms is None, p.p50_ms or 0)):
        mark = "chosen" if p.label == chosen else "front" if p.label in front else p.status if p.status != "ok" else ""
        t.add_row(p.point, Path(p.file).name, p.runtime, f"{p.macs / 1e6:.1f}" if p.macs else "",
                  f"{p.size_bytes / 2**20:.2f} MB" if p.size_bytes else "",
                  f"{p.p50_ms:.3f}" if p.p50_ms is not None else "",
                  f"{100 * p.nme:.2f}%" if p.nme is not None else "", mark)
    return t
