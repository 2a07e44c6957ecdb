"""Bench outputs: the console/markdown table, the Pareto plot of latency against NME, a self-contained HTML page."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from ..artifact_record import Status
from ..atomic import write_json, write_text, write_with
from .slice_report import slices_html, slices_png

COLUMNS = ("variant", "format", "runtime", "status", "size", "model mem", "NME", "p50 ms", "p90 ms", "FPS b1")
REFERENCE_COLUMNS = ("native p50 ms", "ratio", "parity")  # a runtime timed beside its reference (the browser)
NUMERIC = ("size", "model mem", "NME", "p50 ms", "p90 ms", "FPS b1", "native p50 ms", "ratio")


def columns(doc: dict) -> tuple[str, ...]:
    return COLUMNS + (REFERENCE_COLUMNS if any(r.get("reference") for r in doc["records"]) else ())


def _fmt(v, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def rows(doc: dict) -> list[tuple[str, ...]]:
    out = []
    for r in doc["records"]:
        lat, acc = r.get("latency") or {}, r.get("accuracy") or {}
        fps = ((r.get("throughput") or {}).get("1") or {}).get("images_per_s")  # measured, not 1000/p50
        size = f"{r['size_bytes'] / 1e6:.2f} MB" if r.get("size_bytes") else "-"
        mem = f"{r['model_rss_bytes'] / 2**20:.1f} MiB" if r.get("model_rss_bytes") is not None else "-"
        nme = f"{100 * acc['nme']:.2f}%" if acc.get("nme") is not None else "-"
        # The run's deploy.json picked this cell for the target; "(proxy)": picked from timings taken elsewhere.
        chosen = " (proxy)" if r.get("proxy") else " (deploy)" if r.get("chosen") else ""
        row = (f"{r['variant']} {r['precision']}{chosen}", r["format"], r["runtime"], r["status"], size, mem, nme,
               _fmt(lat.get("p50"), ".3f"), _fmt(lat.get("p90"), ".3f"), _fmt(fps, ".0f"))
        if len(columns(doc)) > len(COLUMNS):
            ref = r.get("reference") or {}
            parity = (ref.get("parity") or {}).get("passed")
            row += (_fmt(ref.get("p50_ms"), ".3f"), _fmt(ref.get("p50_ratio"), ".2f") + ("x" if ref else ""),
                    "-" if parity is None else "ok" if parity else "FAILED")
        out.append(row)
    return out


def markdown(doc: dict) -> str:
    cols = columns(doc)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows(doc)]
    return "\n".join(lines) + "\n"


def console_table(doc: dict):
    from rich.table import Table

    table = Table(title=f"edgekit bench: target {doc['target']} ({doc['host']})")
    for c in columns(doc):
        table.add_column(c, justify="right" if c in NUMERIC else "left")
    for row in rows(doc):
        style = None if row[3] == Status.OK else "red"
        table.add_row(*row, style=style)
    return table


def pareto_points(doc: dict) -> list[dict]:
    pts = []
    for r in doc["records"]:
        if r["status"] == Status.OK and r.get("accuracy") and r.get("latency"):
            pts.append({"label": f"{r['variant']} {r['precision']} {r['format']}/{r['runtime']}",
                        "p50": r["latency"]["p50"], "nme": 100 * r["accuracy"]["nme"]})
    return pts


def frontier(points: list[dict], x: str = "p50", y: str = "nme") -> list[dict]:
    """Points no other point beats on both latency (`x`) and NME (`y`), fastest first."""
    best, out = float("inf"), []
    for p in sorted(points, key=lambda p: (p[x], p[y])):
        if p[y] < best:
            out.append(p)
            best = p[y]
    return out


def pareto_figure(doc: dict):
    """The latency/NME plot as a matplotlib figure (the caller saves and closes it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    pts = pareto_points(doc)
    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=120)
    if pts:
        # Points carry markers, and their names go in the legend outside the axes: close points (FP32 and INT8 of
        # one model, the same file on two runtimes) otherwise print their labels on top of each other.
        markers = "os^DvP*Xph<>"
        colors = plt.get_cmap("tab10")
        for i, p in enumerate(pts):
            ax.scatter([p["p50"]], [p["nme"]], marker=markers[i % len(markers)], color=colors(i % 10), s=40,
                       zorder=3, label=p["label"])
        front = frontier(pts)
        ax.step([p["p50"] for p in front], [p["nme"] for p in front], where="post", color="0.5", linestyle="--",
                label="Pareto frontier", zorder=2)
        if doc.get("latency_budget_ms"):  # --recipe auto: the budget the choice had to meet
            ax.axvline(doc["latency_budget_ms"], color="red", linestyle=":", label="latency budget", zorder=1)
        ax.set_xscale("log")
        plain = matplotlib.ticker.FormatStrFormatter("%g")  # 0.3, not 3x10^-1
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain)
        ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    else:
        ax.text(0.5, 0.5, "no cell finished with latency and accuracy", ha="center", transform=ax.transAxes)
    ax.set_xlabel("p50 latency (ms, log scale)")
    ax.set_ylabel("NME (%)")
    ax.set_title(f"latency vs NME, target {doc['target']}")
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    return fig


def pareto_png(doc: dict, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = pareto_figure(doc)
    write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def html_report(doc: dict, png: Path, slices_png: Path | None = None) -> str:
    esc = html.escape
    head = "".join(f"<th>{esc(c)}</th>" for c in columns(doc))
    body = "".join("<tr>" + "".join(f"<td>{esc(v)}</td>" for v in row) + "</tr>" for row in rows(doc))
    details = []
    for r in doc["records"]:
        items = [esc(w) for w in r.get("warnings", [])]
        if r.get("error"):
            items.append("error: " + esc(r["error"]))
        lat = r.get("latency")
        if lat:
            items.append(f"p50 95% CI {lat['p50_ci95'][0]:.3f}-{lat['p50_ci95'][1]:.3f} ms, p99 {lat['p99']:.3f} ms, "
                         f"CV {100 * lat['cv']:.1f}%, n {lat['n']}; init {r['init_ms']:.1f} ms, first inference "
                         f"{r['first_inference_ms']:.2f} ms, model memory at batch 1 "
                         f"{_fmt(r.get('model_rss_bytes') and r['model_rss_bytes'] / 2**20, '.1f')} MiB, runner "
                         f"peak RSS {r['peak_rss_bytes'] / 2**20:.0f} MiB (harness and evaluation data included)")
            tp = ", ".join(f"batch {b}: {v['images_per_s']:.0f} img/s" for b, v in r.get("throughput", {}).items())
            if tp:
                items.append(esc(tp))
        ref = r.get("reference")
        if ref:
            items.append(esc(f"beside {ref['runtime']} on the same file in the same trials: its p50 "
                             f"{ref['p50_ms']:.3f} ms, ratio {ref['p50_ratio']:.2f}x (median of {ref['trials']} "
                             "trials)"))
            if ref.get("parity"):
                items.append(esc("parity against it: " + json.dumps(ref["parity"])))
        name = esc(f"{r['variant']} {r['precision']} {r['format']}/{r['runtime']}")
        details.append(f"<li><b>{name}</b><ul>" + "".join(f"<li>{i}</li>" for i in items) + "</ul></li>")
    fp = next((r.get("fingerprint") for r in doc["records"] if r.get("fingerprint")), None)
    img = base64.b64encode(png.read_bytes()).decode("ascii") if png.exists() else ""
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>edgekit bench: {esc(doc['target'])}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2em;max-width:1100px}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:4px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}
pre{{background:#f6f6f6;padding:1em;overflow:auto}}</style></head><body>
<h1>edgekit bench: target {esc(doc['target'])}</h1>
<p>Host {esc(doc['host'])}, {esc(doc['created'])}, sweep wall time {doc['wall_s']} s.</p>
<table><tr>{head}</tr>{body}</table>
<h2>Latency against NME</h2>
<img alt="Pareto plot" src="data:image/png;base64,{img}">
{slices_html(doc, slices_png)}
<h2>Per cell</h2><ul>{''.join(details)}</ul>
<h2>Protocol</h2><pre>{esc(json.dumps(doc['protocol'], indent=2))}</pre>
<h2>Fingerprint</h2><pre>{esc(json.dumps(fp, indent=2))}</pre>
</body></html>
"""


def write_outputs(doc: dict, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "bench.json", "table": out_dir / "table.md", "pareto": out_dir / "pareto.png",
             "html": out_dir / "report.html"}
    write_json(paths["json"], doc)
    write_text(paths["table"], markdown(doc))
    pareto_png(doc, paths["pareto"])
    sliced = slices_png(doc, out_dir / "slices.png")  # NME per robustness slice, when the records have slices
    if sliced:
        paths["slices"] = sliced
    write_text(paths["html"], html_report(doc, paths["pareto"], sliced))
    return paths
