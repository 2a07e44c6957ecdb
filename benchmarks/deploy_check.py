"""Check the deploy decision against a fresh full bench, and tabulate INT8 against FP32 per runtime.

For each run directory: make a fresh deploy decision (`edgekit.bench.deploy.decide`, the DEPLOY protocol), then
a full `edgekit bench` of the same run, and report where the chosen artifact lands against the fastest
in-budget candidate of that fresh bench (the issue-11 bar: within 5%), plus INT8/FP32 p50 per runtime with
the INT8 scheme from the sidecar.

    .venv/bin/python benchmarks/deploy_check.py runs/recipes/ptq_int8 runs/recipes/distill_int8 --target cpu
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edgekit.bench.api import BenchOptions, bench
from edgekit.bench.deploy import decide
from edgekit.config.catalog import find
from edgekit.config.recipe import load_recipe
from edgekit.config.target import load_target
from edgekit.fingerprint import fingerprint


def check(run: Path, target_name: str) -> dict:
    target = load_target(find("targets", target_name))
    manifest = json.loads((run / "manifest.json").read_text())
    budget = load_recipe(manifest["recipe_path"]).export_nme_budget if manifest.get("recipe_path") else 0.05
    decision = decide(run, [target], budget, progress=False).to_json()["targets"][target.name]
    chosen = decision["chosen"]
    doc, _ = bench(target, BenchOptions(run=run, reference=False, progress=False,
                                        out=run / "bench" / "deploy-check" / target.name))
    in_budget = {c["file"]: c for c in decision["candidates"] if c["status"] == "ok"}
    fresh = {}
    for r in doc["records"]:
        rel = str(Path(r["artifact"]).relative_to(run))
        if r["status"] == "ok":
            fresh[(rel, r["runtime"])] = r["latency"]["p50"]
    eligible = {k: v for k, v in fresh.items() if k[0] in in_budget}
    best = min(eligible.values())
    mine = fresh[(chosen["file"], chosen["runtime"])]
    ratios = {}
    for runtime in sorted({k[1] for k in fresh}):
        p = {Path(f).name.split(".")[1]: v for (f, rt), v in fresh.items() if rt == runtime}
        if "int8" in p and "fp32" in p:
            ratios[runtime] = {"fp32_ms": p["fp32"], "int8_ms": p["int8"], "int8_over_fp32": p["int8"] / p["fp32"]}
    schemes = {a["file"]: a.get("int8_scheme", "pt2e" if a["format"] == "tflite" else None)
               for a in manifest["artifacts"] if a["precision"] == "int8"}
    return {"run": str(run), "chosen": f"{chosen['file']} on {chosen['runtime']}", "chosen_fresh_p50": mine,
            "fastest_in_budget_fresh_p50": best, "chosen_over_fastest": mine / best,
            "int8_vs_fp32": ratios, "int8_schemes": schemes}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", type=Path)
    ap.add_argument("--target", default="cpu")
    args = ap.parse_args(argv)
    fp = fingerprint()
    print(json.dumps({"cpu": fp.get("cpu"), "packages": {k: v for k, v in fp["packages"].items() if v}}))
    worst = 0.0
    for run in args.runs:
        row = check(run, args.target)
        worst = max(worst, row["chosen_over_fastest"])
        print(json.dumps(row, indent=1))
    print(f"worst chosen/fastest: {worst:.3f} (bar 1.05)")
    return 0 if worst <= 1.05 else 1


if __name__ == "__main__":
    sys.exit(main())
