"""Compare two compress runs field by field: a refactor must not change a single figure.

    python benchmarks/compare_runs.py RUN_BEFORE RUN_AFTER

Reads both `manifest.json` files and compares every step's metrics (NME, failure rate, AUC, region NMEs, state
accuracy/F1), MACs, parameters and size, and every artifact's format, precision, size, sha256 and parity figures,
and the accept verdict. Timings (wall_s, latencies), cache keys and paths are left out: they differ by design.
Exits 1 and lists each difference when any figure differs; prints the number of figures compared otherwise.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# Not figures of the model: time taken, cache identity, where files are, and cache hits.
IGNORED = {"wall_s", "key", "cached", "recipe_path", "run", "edgekit_version", "versions", "inputs", "deploy",
           "latency", "p50_ms", "p90_ms", "p99_ms", "torch_threads", "timings"}


def flatten(doc, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}; lists are indexed; ignored keys are dropped at any depth."""
    out: dict[str, object] = {}
    if isinstance(doc, dict):
        for k, v in doc.items():
            if k not in IGNORED:
                out.update(flatten(v, f"{prefix}{k}."))
    elif isinstance(doc, list):
        for i, v in enumerate(doc):
            out.update(flatten(v, f"{prefix}{i}."))
    else:
        out[prefix.rstrip(".")] = doc
    return out


def figures(run: Path) -> dict[str, object]:
    manifest = json.loads((run / "manifest.json").read_text())
    steps = {f"step[{s['name']}]": s for s in manifest["steps"]}
    artifacts = {f"artifact[{a['file']}]": a for a in manifest["artifacts"]}
    return flatten({**steps, **artifacts, "accept": manifest.get("accept")})


def compare(before: Path, after: Path) -> list[str]:
    a, b = figures(before), figures(after)
    diffs = [f"{k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    return diffs


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    args = ap.parse_args(argv)
    diffs = compare(args.before, args.after)
    for d in diffs:
        print(d)
    n = len(figures(args.before))
    print(f"{n} figures compared; {len(diffs)} differ" if diffs else f"{n} figures compared; all equal")
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
