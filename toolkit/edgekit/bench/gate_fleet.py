"""`edgekit gate` on a fleet: every host judged at once, each against its own baseline, and the class as a whole.

Each host runs the ordinary gate over ssh (same-run A/B on that host, or its own stored baseline:
`<folder>/<host>.json`, measured there). A host that regresses fails the gate by name, even when the others pass:
a change that slows one unit of a class (its thermal state, its firmware, its power mode) is what one-device
gating misses. The class verdict asks whether most hosts regressed, and gives the median of the hosts' ratios.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from .decision import INCONCLUSIVE, PASS, REGRESSION
from .fleet import host_folder, on_every_host
from .gate import GateOptions
from .remote import Remote


def baseline_file(folder: Path, host: str) -> Path:
    """A host's stored baseline in a fleet's baseline folder."""
    return folder / f"{host_folder(host)}.json"


def per_host(hosts: list[str], opts: GateOptions, ssh_config: Path | None, remote_python: str,
             gate_one: Callable[[str, GateOptions, Path], dict], workdir: Path) -> dict[str, dict]:
    """`gate_one(host, options for that host, its own work folder)` on every host at once."""
    def run(host: str) -> dict:
        folder = workdir / host_folder(host)
        folder.mkdir(parents=True, exist_ok=True)
        return gate_one(host, replace(opts, remote=Remote(host, ssh_config, remote_python), progress=None), folder)

    return on_every_host(hosts, run)


def fleet_report(reports: dict[str, dict]) -> dict:
    """Per host its own report; failing: the hosts that regressed; the class: the median ratio and whether most
    hosts regressed. The gate fails when any host does."""
    verdicts = {h: r["verdict"] for h, r in reports.items()}
    failing = sorted(h for h, v in verdicts.items() if v == REGRESSION)
    ratios = [r["latency"]["ratio"] for r in reports.values() if "ratio" in (r.get("latency") or {})]
    class_verdict = REGRESSION if len(failing) > len(reports) / 2 else \
        PASS if all(v == PASS for v in verdicts.values()) or failing else INCONCLUSIVE
    verdict = REGRESSION if failing else PASS if all(v == PASS for v in verdicts.values()) else INCONCLUSIVE
    return {"mode": "fleet", "hosts": reports, "failing_hosts": failing, "verdict": verdict,
            "class": {"verdict": class_verdict, "median_ratio": statistics.median(ratios) if ratios else None,
                      "hosts_regressed": len(failing), "hosts": len(reports)}}


def fleet_markdown(report: dict, host_markdown: Callable[[dict], str]) -> str:
    c = report["class"]
    ratio = f", median candidate/baseline ratio {c['median_ratio']:.3f}" if c["median_ratio"] else ""
    lines = [f"## edgekit gate on a fleet of {c['hosts']}: **{report['verdict'].upper()}**", "",
             f"- failing hosts: {', '.join(report['failing_hosts']) or 'none'}",
             f"- the class: {c['hosts_regressed']} of {c['hosts']} hosts regressed{ratio} -> {c['verdict']}", ""]
    for host, r in report["hosts"].items():
        lines += [f"#### host {host}", host_markdown(r)]
    return "\n".join(lines)
