"""Publish a checkpoint to a model zoo: FP16 weights, metrics re-measured from those weights, and a card.

The card's figures come from the file as shipped (FP16 loaded back to FP32), not from the training-time FP32
model, so a later re-measurement on the same fixed split must match them.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from .atomic import write_text
from .data import SynthFaces
from .errors import EdgekitError
from .models.checkpoint import load_checkpoint, save_checkpoint
from .models.registry import count_macs_params
from .train.evaluate import evaluate_model
from .train.teacher import TEST_SPLIT_SIZE


def measure(path: str | Path) -> dict:
    model, meta = load_checkpoint(path)
    return evaluate_model(model, SynthFaces("test", size=meta.input_size, length=TEST_SPLIT_SIZE),
                          mean=meta.mean, std=meta.std)


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
    test = measure(staged)
    macs, params = count_macs_params(model, meta.input_size)
    meta.metrics = {**meta.metrics, "synthfaces_test": test, "macs": macs, "params": params,
                    "measured_from": "fp16 weights as shipped"}
    save_checkpoint(staged, model, meta, half=True)
    card = out_dir / f"{name}.md"
    write_text(card, render_card(name, meta, staged.stat().st_size, role))
    return staged, card


def _without_out(command: str) -> str:
    """The recorded training command minus its `--out PATH`: the card names its own output path."""
    words = shlex.split(command)
    keep, skip = [], False
    for w in words:
        if skip:
            skip = False
        elif w == "--out":
            skip = True
        elif not w.startswith("--out="):
            keep.append(w)
    return shlex.join(keep)


def render_card(name: str, meta, size_bytes: int, role: str = "teacher") -> str:
    t = meta.metrics["synthfaces_test"]
    p = meta.provenance
    cfg = p.get("config", {})
    fit = cfg.get("fit", {})
    rows = [("NME (inter-ocular)", f"{100 * t['nme']:.2f}%"), ("failure rate @10%", f"{100 * t['failure_rate']:.2f}%"),
            ("AUC @10%", f"{t['auc']:.4f}")]
    rows += [(f"NME {k}", f"{100 * v:.2f}%") for k, v in t["region_nme"].items()]
    rows += [(f"{k} accuracy / F1", f"{100 * v['accuracy']:.2f}% / {v['f1']:.3f}") for k, v in t["states"].items()]
    rows += [("part-state accuracy (mean)", f"{100 * t['state_accuracy']:.2f}%")]
    table = "\n".join(f"| {a} | {b} |" for a, b in rows)
    versions = ", ".join(f"{k} {v}" for k, v in p.get("versions", {}).items())
    command = _without_out(p.get("command", "")) or (
        f"edgekit teacher train --arch {meta.arch} --epochs {fit.get('epochs')} --steps-per-epoch "
        f"{fit.get('steps_per_epoch')} --batch-size {cfg.get('batch_size')} --seed {fit.get('seed')}")
    intro = ROLES[role].format(name=name)
    role_flag = "" if role == "teacher" else f" --role {role}"
    return f"""# {name}

{intro}

| | |
| --- | --- |
| architecture | `{meta.arch}` {json.dumps(meta.arch_kwargs)}, input {meta.input_size}x{meta.input_size} RGB, mean {list(meta.mean)}, std {list(meta.std)} |
| outputs | `landmarks` (N, 68, 2) in [0, 1] crop coordinates; `states` (N, 3) logits: {', '.join(meta.state_names)} |
| size | {meta.metrics['params'] / 1e6:.2f} M parameters, {meta.metrics['macs'] / 1e6:.1f} MMACs, {size_bytes / 1e6:.2f} MB (FP16 safetensors) |
| training data | {p.get('data', {}).get('train', 'SynthFaces')} (fresh faces every epoch), validation {p.get('data', {}).get('val', '')} |
| training | best epoch {p.get('best_epoch')}, wall time {p.get('wall_s', 0) / 60:.1f} min, {versions} |

## Metrics on the fixed test split

{p.get('data', {}).get('test', 'SynthFaces test split')}, measured from the FP16 weights as shipped:

| metric | value |
| --- | --- |
{table}

## Reproduce

```bash
{command} --out {name}-fp32.safetensors
edgekit teacher publish --weights {name}-fp32.safetensors --name {name} --out-dir toolkit/edgekit/zoo{role_flag}
edgekit teacher eval --weights zoo:{name} --data synth:test   # re-measures the table above
```

Training is seeded (data, augmentation, initialisation); with the same thread count it repeats exactly.
Synthetic faces are not real faces: measure on your own labeled data (`--data folder/`) before trusting these
numbers for real photos.
"""
