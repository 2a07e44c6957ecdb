"""Hunt for the oneDNN crash in convolution backward that pruning hit on a Xeon with AVX512 and AMX (issue 10).

    .venv/bin/python benchmarks/onednn_backward_repro.py [--isa native,AVX512_CORE_VNNI,AVX2] [--quick]

Pruning leaves layers with channel counts that training from scratch never sees (8, 24, 40, ... any multiple of
the target's rounding). This sweeps 3x3 and 1x1 convolutions, forward plus backward in channels_last (what the
training loop uses), over those channel counts at the teacher's resolutions, once per oneDNN ISA cap, each cap in
its own process: a crash kills only that process, and the last shape it printed is the one that crashed. A crash
is then re-run alone to confirm a minimal reproduction. Prints JSON: the CPU, oneDNN's ISA, and crashes found.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys

# (channels in, channels out, kernel, stride, spatial): the shapes of a pruned ResNetFace at input 112.
CHANNELS = (8, 16, 24, 32, 40, 48, 56, 64, 72, 96, 104, 120, 136, 160, 192)
SPATIAL = ((56, 1), (56, 2), (28, 1), (28, 2), (14, 1), (14, 2), (7, 1))


def shapes(quick: bool):
    channels = CHANNELS[::3] if quick else CHANNELS
    for cin, cout, (size, stride), k in itertools.product(channels, channels, SPATIAL, (3, 1)):
        if k == 1 and stride == 1 and cin == cout:
            continue
        yield cin, cout, k, stride, size


def run_shapes(todo: list[tuple], batch: int) -> None:
    """Child process: run each shape, printing it first so a crash names the shape."""
    import torch

    torch.manual_seed(0)
    for cin, cout, k, stride, size in todo:
        print(json.dumps([cin, cout, k, stride, size]), flush=True)
        conv = torch.nn.Conv2d(cin, cout, k, stride, k // 2, bias=False).to(memory_format=torch.channels_last)
        x = torch.randn(batch, cin, size, size).to(memory_format=torch.channels_last).requires_grad_()
        conv(x).square().mean().backward()
    print("DONE", flush=True)


def sweep(isa: str, todo: list[tuple], batch: int) -> dict:
    env = dict(os.environ)
    env.pop("ONEDNN_MAX_CPU_ISA", None)
    if isa != "native":
        env["ONEDNN_MAX_CPU_ISA"] = isa
    env["ONEDNN_VERBOSE"] = "1"  # its first lines name the ISA oneDNN actually dispatches to
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(todo), "--batch", str(batch)],
                          env=env, capture_output=True, text=True, check=False)
    lines = proc.stdout.splitlines()
    dispatched = next((ln.split("isa:")[1] for ln in lines if ",isa:" in ln), "unknown")
    ran = [json.loads(ln) for ln in lines if ln.startswith("[")]
    crashed = None if "DONE" in lines else (ran[-1] if ran else None)
    return {"isa_cap": isa, "dispatched": dispatched, "returncode": proc.returncode, "shapes_run": len(ran),
            "crashed_at": crashed, "stderr_tail": proc.stderr.strip().splitlines()[-3:] if crashed else []}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--isa", default="native,AVX512_CORE_VNNI,AVX2")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--quick", action="store_true", help="every third channel count only")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        run_shapes([tuple(s) for s in json.loads(args.child)], args.batch)
        return
    from edgekit.fingerprint import fingerprint

    todo = list(shapes(args.quick))
    results = []
    for isa in args.isa.split(","):
        r = sweep(isa, todo, args.batch)
        if r["crashed_at"] is not None:  # confirm: the one shape alone, in a fresh process
            r["alone"] = sweep(isa, [tuple(r["crashed_at"])], args.batch)
        results.append(r)
        print(json.dumps(r), file=sys.stderr)
    print(json.dumps({"fingerprint": fingerprint(), "shapes": len(todo), "results": results}, indent=1))


if __name__ == "__main__":
    main()
