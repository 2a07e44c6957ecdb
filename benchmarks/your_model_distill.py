"""Issue 9's acceptance run: the shipped teacher as a plain ONNX file (no edgekit metadata), used as *your*
model, distilled with `distill_int8` on an unlabeled folder of 5,000 face crops; the student is scored against
ground truth on SynthFaces test (1,000 labeled faces).

    .venv/bin/python benchmarks/your_model_distill.py --out runs/your_model

Prints the teacher's and the student's NME against ground truth, their ratio (bar: <= 1.15) and the wall time
of the compress command (bar: <= 15 min on 2 cores). The crops are rendered SynthFaces train images (their
labels are thrown away), so the folder needs no download.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import cv2


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/your_model"))
    ap.add_argument("--images", type=int, default=5000)
    args = ap.parse_args()
    from edgekit.convert.onnx import export_onnx
    from edgekit.data import render
    from edgekit.models.checkpoint import load_checkpoint

    args.out.mkdir(parents=True, exist_ok=True)
    teacher, meta = load_checkpoint("zoo:facial68-teacher")
    onnx_path = export_onnx(teacher, args.out / "teacher.onnx", (1, 3, 112, 112), ["landmarks", "states"])
    crops = args.out / "crops"
    crops.mkdir(exist_ok=True)
    for i in range(args.images):  # seed 7: a stream no edgekit split uses
        f = crops / f"{i:05d}.png"
        if not f.exists():
            cv2.imwrite(str(f), render(7, i).image[:, :, ::-1])
    mean, std = ",".join(map(str, meta.mean)), ",".join(map(str, meta.std))
    cmd = [sys.executable, "-m", "edgekit.cli", "compress", "--recipe", "distill_int8", "--target", "cpu",
           "--model", str(onnx_path), "--landmarks-output", "landmarks", "--states-output", "states",
           "--mean", mean, "--std", std, "--data", str(crops), "--eval-data", "synth:test:1000",
           "--run-dir", str(args.out / "run"), "--quiet"]
    print(" ".join(cmd), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd)
    wall = time.perf_counter() - start
    manifest = json.loads((args.out / "run" / "manifest.json").read_text())
    steps = {s["name"]: s["metrics"]["nme"] for s in manifest["steps"]}
    teacher_nme = manifest["steps"][0]["metrics"]["nme"]
    result = {"exit": done.returncode, "wall_s": round(wall, 1), "nme": steps,
              "ratios": {k: round(v / teacher_nme, 3) for k, v in steps.items()},
              "images": args.images}
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
