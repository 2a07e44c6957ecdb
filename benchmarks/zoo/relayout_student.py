"""Warm-start a student on another stride layout: same weights, strides moved (edgekit.models.student.LAYOUTS).

    python benchmarks/zoo/relayout_student.py zoo:facial68-student-photos-w075-h32 early-stride \
        runs/init-w075-h32-early.safetensors

Every layout has the same weight shapes, so the checkpoint's weights load unchanged; only where the feature map
halves moves. The result is a starting point for a distill stage (benchmarks/zoo/pretrain_v3_w075-h32-early.yaml),
not a usable model: its features were learnt at other resolutions.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "toolkit"))

from edgekit.models.checkpoint import load_checkpoint, save_checkpoint  # noqa: E402
from edgekit.models.registry import build  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("source", help="zoo:NAME or a .safetensors student checkpoint (arch mobile)")
    ap.add_argument("layout", help="a layout of edgekit.models.student.LAYOUTS, e.g. early-stride")
    ap.add_argument("out", type=Path)
    args = ap.parse_args()
    model, meta = load_checkpoint(args.source)
    if meta.arch != "mobile" or meta.pruned:
        sys.exit(f"{args.source}: needs an unpruned 'mobile' student, got arch {meta.arch!r} pruned={meta.pruned}")
    kwargs = {**meta.arch_kwargs, "layout": args.layout}
    relaid = build("mobile", input_size=meta.input_size, **kwargs)
    relaid.load_state_dict(model.state_dict())
    provenance = {"relaid_from": args.source, "layout": args.layout,
                  "command": "python benchmarks/zoo/relayout_student.py " + " ".join(sys.argv[1:])}
    save_checkpoint(args.out, relaid, replace(meta, arch_kwargs=kwargs, metrics={}, provenance=provenance))
    print(f"wrote {args.out} ({args.layout} layout, weights of {args.source})")


if __name__ == "__main__":
    main()
