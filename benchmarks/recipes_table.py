"""Every shipped recipe, compressed and benched: the table of issue 10.

    .venv/bin/python benchmarks/recipes_table.py [--recipes distill_int8,...] [--root runs/recipes] [--reuse]

For each recipe: `edgekit compress --recipe R --target cpu` from an empty run directory (timed; exit 1, a missed
accuracy budget, still counts as a finished run and is shown), then `edgekit bench --target cpu` on that run
(ONNX Runtime and LiteRT, 1 thread, batch 1, the bench's full protocol). The row is the recipe's final model:
its NME on the recipe's eval split and the ratio to the teacher's, MMACs, the file size and p50 of its final
precision in each runtime (INT8 for the INT8 recipes; none for fp16, whose FP16 model is for GPUs and which the
cpu target does not run), and the time to compress. The teacher's ONNX p50 comes from the same bench run, so ONNX
Runtime ratios are side by side; runs that compress the teacher bench it as ONNX only, so their LiteRT ratio
(marked *) uses the teacher's FP32 TFLite p50 from the ptq_int8/fp16 benches of the same session.
Prints a markdown table (for benchmarks/RESULTS.md) and writes <root>/table.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from edgekit.atomic import write_json
from edgekit.fingerprint import fingerprint

RECIPES = ("distill_int8", "distill_prune_int8", "prune_int8", "ptq_int8", "fp16")


def edgekit(*args: str) -> int:
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], check=False).returncode


def compress(recipe: str, run: Path, reuse: bool) -> float | None:
    if reuse and (run / "manifest.json").exists():
        return None
    shutil.rmtree(run, ignore_errors=True)
    start = time.perf_counter()
    code = edgekit("compress", "--recipe", recipe, "--target", "cpu", "--run-dir", str(run), "--quiet")
    if code not in (0, 1):
        raise SystemExit(f"{recipe}: compress exited {code}")
    return time.perf_counter() - start


def p50(records: list[dict], variant: str, fmt: str, precision: str) -> float | None:
    for r in records:
        if (r["variant"], r["format"], r["precision"]) == (variant, fmt, precision) and r["status"] == "ok":
            return r["latency"]["p50"]
    return None


def row(recipe: str, run: Path, wall_s: float | None) -> dict:
    manifest = json.loads((run / "manifest.json").read_text())
    steps = manifest["steps"]
    teacher, final = steps[0], steps[-1]
    # The cpu target runs FP32 and INT8; an FP16 model (for GPUs) has no CPU p50 of its own.
    precision = final.get("precision", "fp32")
    # The last float model (what bench calls the variant): the teacher when no stage made a new model.
    model_step = next((s for s in reversed(steps[1:]) if s.get("precision", "fp32") == "fp32"), teacher)
    bench = json.loads((run / "bench" / "cpu" / "bench.json").read_text())["records"]
    variant = model_step["name"] if model_step is not teacher else "teacher"
    out = {"recipe": recipe, "final": final["name"], "nme": final["metrics"]["nme"],
           "nme_ratio": final["metrics"]["nme"] / teacher["metrics"]["nme"], "mmacs": model_step["macs"] / 1e6,
           "macs_ratio": model_step["macs"] / teacher["macs"], "size_bytes": final["size_bytes"],
           "budget_met": manifest.get("accept", {}).get("met"), "compress_s": wall_s}
    for fmt, runtime in (("onnx", "ort"), ("tflite", "litert")):
        mine, ref = p50(bench, variant, fmt, precision), p50(bench, "teacher", fmt, "fp32")
        out[f"p50_{runtime}_ms"] = mine
        out[f"p50_{runtime}_vs_teacher"] = mine / ref if mine and ref else None
        out[f"p50_{runtime}_teacher_ms"] = ref
    return out


def borrow_teacher_litert(rows: list[dict]) -> None:
    """A compressed run benches its teacher as ONNX only (the reference the run keeps); the FP32 teacher's LiteRT
    p50 comes from the runs that export the teacher itself (ptq_int8, fp16): same session, not side by side,
    so those ratios are marked."""
    refs = sorted(r["p50_litert_teacher_ms"] for r in rows if r.get("p50_litert_teacher_ms"))
    if not refs:
        return
    ref = refs[len(refs) // 2]
    for r in rows:
        if r.get("p50_litert_teacher_ms") is None and r["p50_litert_ms"]:
            r["p50_litert_vs_teacher"], r["litert_ref_borrowed"] = r["p50_litert_ms"] / ref, ref


def fmt(v, spec: str) -> str:
    return "n/a" if v is None else format(v, spec)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default=",".join(RECIPES))
    ap.add_argument("--root", default="runs/recipes")
    ap.add_argument("--reuse", action="store_true",
                    help="keep finished runs and their benches (their compress time comes from the last table.json)")
    args = ap.parse_args()
    root = Path(args.root)
    previous = {}
    if (root / "table.json").exists():
        previous = {r["recipe"]: r for r in json.loads((root / "table.json").read_text())["rows"]}
    rows = []
    for recipe in args.recipes.split(","):
        run = root / recipe
        wall = compress(recipe, run, args.reuse)
        reused = wall is None
        if wall is None:
            wall = previous.get(recipe, {}).get("compress_s")
        if not (reused and (run / "bench" / "cpu" / "bench.json").exists()):
            if edgekit("bench", "--target", "cpu", "--run", str(run), "--quiet") != 0:
                print(f"{recipe}: bench reported failed cells; see {run}/bench/cpu", file=sys.stderr)
        rows.append(row(recipe, run, wall))
    # Rows of recipes not run this time stay in table.json as they were.
    ran = {r["recipe"] for r in rows}
    kept = [r for name, r in previous.items() if name not in ran]
    order = {name: i for i, name in enumerate(RECIPES)}
    rows = sorted(rows + kept, key=lambda r: order.get(r["recipe"], len(order)))
    borrow_teacher_litert(rows)
    write_json(root / "table.json", {"fingerprint": fingerprint(), "rows": rows})
    print("| recipe | final | NME | NME ratio | MMACs (ratio) | size | p50 ORT ms (vs teacher) | "
          "p50 LiteRT ms (vs teacher) | compress | budget |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['recipe']} | {r['final']} | {100 * r['nme']:.2f}% | {r['nme_ratio']:.2f}x | "
              f"{r['mmacs']:.1f} ({r['macs_ratio']:.2f}) | {r['size_bytes'] / 1e6:.2f} MB | "
              f"{fmt(r['p50_ort_ms'], '.3f')} ({fmt(r['p50_ort_vs_teacher'], '.3f')}) | "
              f"{fmt(r['p50_litert_ms'], '.3f')} ({fmt(r['p50_litert_vs_teacher'], '.3f')}"
              f"{'*' if r.get('litert_ref_borrowed') else ''}) | "
              f"{fmt(r['compress_s'] and r['compress_s'] / 60, '.1f')} min | "
              f"{'met' if r['budget_met'] else 'missed'} |")


if __name__ == "__main__":
    main()
