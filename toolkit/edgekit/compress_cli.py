"""Glue between `edgekit compress` options and the pipeline: resolve names, override data, print the table."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from .config.catalog import find
from .config.recipe import load_recipe
from .config.target import load_target
from .errors import EdgekitError
from .pipeline import CompressRun, compress


def resolve_targets(spec: str):
    names = [s.strip() for s in spec.split(",") if s.strip()]
    if not names:
        raise EdgekitError("--target needs at least one target name")
    return [load_target(find("targets", n)) for n in names]


def run_compress(recipe: str, target: str, teacher: str | None, data: str | None, run_dir: Path | None, seed: int,
                 workers: int, progress: bool, console: Console) -> dict:
    path = find("recipes", recipe)
    rec = load_recipe(path)
    if data is not None:
        rec = rec.model_copy(update={"data": rec.data.model_copy(update={"train": data, "calibration": data})})
    targets = resolve_targets(target)
    out = run_dir or Path("runs") / rec.name
    manifest = compress(CompressRun(recipe=rec, run_dir=out, targets=targets, teacher=teacher, progress=progress,
                                    seed=seed, workers=workers, recipe_path=str(path)))
    console.print(step_table(manifest, title=f"{rec.name} -> {out}"))
    return manifest


def step_table(manifest: dict, title: str = "") -> Table:
    t = Table(title=title, title_justify="left")
    for col in ("step", "params", "MMACs", "size", "NME", "jaw", "brows", "nose", "eyes", "mouth", "state F1",
                "time"):
        t.add_column(col, justify="left" if col == "step" else "right")
    for s in manifest["steps"]:
        m = s["metrics"]
        r = m["region_nme"]
        t.add_row(
            s["name"], f"{s['params'] / 1e6:.2f}M", f"{s['macs'] / 1e6:.1f}", f"{s['size_bytes'] / 1e6:.2f} MB",
            f"{100 * m['nme']:.2f}%", *(f"{100 * r[k]:.2f}" for k in ("jaw", "brows", "nose", "eyes", "mouth")),
            f"{m.get('state_f1', float('nan')):.3f}", "cached" if s.get("cached") else f"{s['wall_s']:.0f}s",
        )
    return t
