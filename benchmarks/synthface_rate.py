"""SynthFaces rendering rate on one core.

    .venv/bin/python benchmarks/synthface_rate.py [--images 1000] [--repeats 5] [--size 112] [--version 1|2|3]

Pins the process to a single CPU (and OpenCV to one thread), renders the same images `repeats` times and prints
the median rate with the spread, plus how long one image takes. The bar is >= 300 images/s on one core.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

from edgekit.data.synthface import render
from edgekit.fingerprint import cpu_info


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=112)
    ap.add_argument("--version", type=int, default=1, choices=(1, 2, 3), help="SynthFaces renderer")
    args = ap.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    render(1, 0, args.size, args.version)  # warm-up: imports, first allocations, v2's background photos
    rates = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        for i in range(args.images):
            render(1, i, args.size, args.version)
        rates.append(args.images / (time.perf_counter() - t))
    result = {
        "images_per_s_median": round(statistics.median(rates), 1),
        "images_per_s_min": round(min(rates), 1),
        "images_per_s_max": round(max(rates), 1),
        "images": args.images,
        "repeats": args.repeats,
        "size": args.size,
        "version": args.version,
        "cpu": cpu_info()["model"],
        "python": platform.python_version(),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
