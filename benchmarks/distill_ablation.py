"""Distillation ablation from a pre-trained student: which KD settings improve it (issue 10).

    .venv/bin/python benchmarks/distill_ablation.py --init zoo:facial68-student-w050 [--epochs 4] [--configs A,B,C]

Each configuration fine-tunes the same pre-trained student for the same number of steps with seed 0 and reports
validation NME (synth:val:300) per epoch and test NME (synth:test:1000) of the best epoch, next to the
student as it starts. Prints JSON and a markdown table for benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from edgekit.compress.context import StageContext
from edgekit.compress.distill import run_distill
from edgekit.compress.stages.distill import DistillConfig
from edgekit.config.recipe import DataSpec, StudentSpec
from edgekit.data import SynthFaces
from edgekit.fingerprint import fingerprint
from edgekit.models.checkpoint import load_checkpoint
from edgekit.train.evaluate import evaluate_model

CONFIGS = {
    "A": ("pool 12k, feature loss 0.5, lr 1e-3", {"pool": 12000, "lr": 1e-3, "loss": {"features": 0.5}}),
    "B": ("pool 12k, no feature loss, lr 1e-3", {"pool": 12000, "lr": 1e-3, "loss": {"features": 0.0}}),
    "C": ("live teacher on augmented fresh faces, lr 1e-3", {"pool": 0, "lr": 1e-3, "loss": {"features": 0.0}}),
    "D": ("live teacher, lr 3e-4", {"pool": 0, "lr": 3e-4, "loss": {"features": 0.0}}),
    "E": ("live teacher, ground truth only (no KD term weight change: gt 1.0)", {"pool": 0, "lr": 1e-3,
          "loss": {"features": 0.0, "ground_truth": 1.0}}),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--init", required=True)
    ap.add_argument("--teacher", default="zoo:facial68-teacher")
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--configs", default="A,B,C")
    ap.add_argument("--workers", type=int, default=1)
    args = ap.parse_args()
    teacher, meta = load_checkpoint(args.teacher)
    for p in teacher.parameters():
        p.requires_grad_(False)
    test = SynthFaces("test", size=meta.input_size, length=1000)
    start, _ = load_checkpoint(args.init)
    rows = [{"config": "start", "what": f"{args.init} as shipped", "test_nme": evaluate_model(start, test)["nme"]}]
    for name in args.configs.split(","):
        what, kw = CONFIGS[name]
        ctx = StageContext(teacher=teacher, meta=meta, data=DataSpec(), run_dir=None, progress=False,
                           workers=args.workers)
        cfg = DistillConfig(epochs=args.epochs, steps_per_epoch=100, batch_size=64, **kw)
        t = time.perf_counter()
        student, _, extra = run_distill(cfg, StudentSpec(init=args.init), ctx)
        rows.append({"config": name, "what": what, "val_nme": [h["nme"] for h in extra["history"]],
                     "test_nme": evaluate_model(student, test)["nme"], "wall_s": time.perf_counter() - t})
        print(json.dumps(rows[-1]), flush=True)
    print(json.dumps({"fingerprint": fingerprint(), "torch_threads": torch.get_num_threads(), "rows": rows},
                     indent=1))
    print("| config | what | val NME by epoch | test NME | wall |")
    print("| --- | --- | --- | --- | --- |")
    for r in rows:
        val = ", ".join(f"{100 * v:.2f}" for v in r.get("val_nme", []))
        wall = f"{r['wall_s'] / 60:.1f} min" if "wall_s" in r else ""
        print(f"| {r['config']} | {r['what']} | {val} | {100 * r['test_nme']:.2f}% | {wall} |")


if __name__ == "__main__":
    main()
