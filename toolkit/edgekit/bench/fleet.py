"""A device fleet: one target benched on several hosts at once, one runner per host, reported per host and as a
class.

Each host runs the ordinary sweep over ssh (its own trials, its own fingerprint) in its own thread; the hosts run
side by side, so a fleet of ten takes about as long as one device. The class record of a cell is its median across
hosts (the p50 of the class is the median of the hosts' p50s) with the spread, and a host whose p50 is over
OUTLIER_RATIO x the median of the other hosts' on most cells is named the outlier: trusting one device for its
class is how a slow unit, a throttled board or a misconfigured image slips through.
"""

from __future__ import annotations

import re
import statistics
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path

from ..atomic import write_json, write_text
from .stats import summarize_latency

SCHEMA = "edgekit-fleet/1"
OUTLIER_RATIO = 1.25  # a host this much slower than the median of the others, on most cells, is named


def host_folder(host: str) -> str:
    """A host as a folder name (user@host:port -> user_at_host_port)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", host.replace("@", "_at_"))


def on_every_host(hosts: list[str], work) -> dict[str, dict]:
    """`work(host)` on every host at once (one thread each: the work is ssh processes); host -> its result."""
    with ThreadPoolExecutor(max_workers=len(hosts)) as pool:
        return dict(zip(hosts, pool.map(work, hosts), strict=True))


def _key(r: dict) -> tuple:
    return (r["variant"], r["precision"], r["format"], r["runtime"], Path(r["artifact"]).name)


def summarize(docs: dict[str, dict], ratio: float = OUTLIER_RATIO) -> dict:
    """Per cell: each host's p50, the class median and spread (slowest over fastest), and the hosts over `ratio`
    x the median of the others; per host: on how many cells it was such an outlier."""
    hosts = list(docs)
    by_key: dict[tuple, dict[str, dict]] = {}
    for host, doc in docs.items():
        for r in doc["records"]:
            by_key.setdefault(_key(r), {})[host] = r
    cells, flagged = [], dict.fromkeys(hosts, 0)
    for key, per_host in by_key.items():
        p50 = {h: r["latency"]["p50"] for h, r in per_host.items() if r.get("status") == "ok" and r.get("latency")}
        cell = {"variant": key[0], "precision": key[1], "format": key[2], "runtime": key[3], "file": key[4],
                "p50_ms": p50, "failed_on": sorted(set(per_host) - set(p50))}
        if p50:
            cell["median_ms"] = statistics.median(p50.values())
            cell["spread"] = max(p50.values()) / min(p50.values())
            cell["outliers"] = [h for h, v in p50.items() if len(p50) > 1 and
                                v > ratio * statistics.median([w for g, w in p50.items() if g != h])]
            for h in cell["outliers"]:
                flagged[h] += 1
        cells.append(cell)
    measured = sum(1 for c in cells if c["p50_ms"])
    outliers = [h for h, n in flagged.items() if measured and n > measured / 2]
    return {"schema": SCHEMA, "hosts": hosts, "outlier_ratio": ratio, "cells": cells, "outlier_hosts": outliers,
            "outlier_cells": flagged}


def class_document(docs: dict[str, dict], summary: dict) -> dict:
    """The fleet as one bench document: each cell's record from the first host that measured it, its latency
    pooled over every host's trials, and its p50 the median of the hosts' p50s. The deploy decision, tables and
    plots read it like any bench document."""
    first = next(iter(docs.values()))
    merged = []
    for cell in summary["cells"]:
        records = [r for doc in docs.values() for r in doc["records"] if _key(r) == (
            cell["variant"], cell["precision"], cell["format"], cell["runtime"], cell["file"])]
        ok = [r for r in records if r.get("status") == "ok" and r.get("latency")]
        record = dict(ok[0] if ok else records[0])
        if ok:
            record["latency"] = summarize_latency([t for r in ok for t in r["latency_samples_ms"]])
            record["latency"]["p50"] = cell["median_ms"]
            record["latency_samples_ms"] = [t for r in ok for t in r["latency_samples_ms"]]
        record["host"] = "fleet"
        record["fleet"] = {"p50_ms": cell["p50_ms"], "spread": cell.get("spread"), "outliers": cell.get("outliers", []),
                           "failed_on": cell["failed_on"]}
        merged.append(record)
    return {**first, "host": "fleet", "hosts": list(docs), "records": merged,
            "wall_s": max(d["wall_s"] for d in docs.values())}


def markdown(summary: dict) -> str:
    hosts = summary["hosts"]
    lines = ["| cell | " + " | ".join(f"{h} p50 ms" for h in hosts) + " | class median | spread | outliers |",
             "| --- | " + " | ".join("---" for _ in hosts) + " | --- | --- | --- |"]
    for c in summary["cells"]:
        per = [f"{c['p50_ms'][h]:.3f}" if h in c["p50_ms"] else "failed" for h in hosts]
        median = f"{c['median_ms']:.3f}" if "median_ms" in c else "-"
        spread = f"{c['spread']:.2f}x" if "spread" in c else "-"
        lines.append(f"| {c['variant']} {c['precision']} {c['format']}/{c['runtime']} | " + " | ".join(per) +
                     f" | {median} | {spread} | {', '.join(c.get('outliers', [])) or '-'} |")
    named = ", ".join(summary["outlier_hosts"]) or "none"
    lines.append(f"\nOutlier hosts (over {summary['outlier_ratio']}x the others on most cells): {named}\n")
    return "\n".join(lines)


def write_fleet(docs: dict[str, dict], summary: dict, class_doc: dict, out: Path, write_outputs) -> dict[str, Path]:
    """Each host's report under hosts/<host>/, the class report in `out`, and fleet.json / fleet.md."""
    for host, doc in docs.items():
        write_outputs(doc, out / "hosts" / host_folder(host))
    paths = write_outputs(class_doc, out)
    paths["fleet"] = out / "fleet.json"
    write_json(paths["fleet"], {**summary, "reports": {h: f"hosts/{host_folder(h)}" for h in docs}})
    write_text(out / "fleet.md", markdown(summary))
    return paths


def per_host_options(opts, host: str):
    """One host's bench options: that host alone, without the progress bar (hosts run in threads)."""
    return replace(opts, host=host, hosts=None, progress=False)
