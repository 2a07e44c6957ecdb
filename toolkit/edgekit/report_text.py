"""Rich tables for metrics and machine fingerprints, shared by the commands that print them."""

from __future__ import annotations

from rich.table import Table


def metrics_table(m: dict, title: str = "") -> Table:
    t = Table(title=title, title_justify="left")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("images", str(m["n"]))
    t.add_row("NME (inter-ocular)", f"{100 * m['nme']:.2f}%")
    t.add_row("failure rate @10%", f"{100 * m['failure_rate']:.2f}%")
    t.add_row("AUC @10%", f"{m['auc']:.4f}")
    for region, v in m["region_nme"].items():
        t.add_row(f"  NME {region}", f"{100 * v:.2f}%")
    for name, s in m.get("states", {}).items():
        t.add_row(f"  {name}", f"acc {100 * s['accuracy']:.2f}%  F1 {s['f1']:.3f}")
    if "state_accuracy" in m:
        t.add_row("part-state accuracy (mean)", f"{100 * m['state_accuracy']:.2f}%")
        t.add_row("part-state F1 (mean)", f"{m['state_f1']:.3f}")
    for name, s in m.get("slices", {}).items():  # robustness slices (edgekit.slices), with their image counts
        t.add_row(f"  NME {name} slice", "no images" if s["nme"] is None else f"{100 * s['nme']:.2f}% of {s['n']}")
    return t


def fingerprint_table(fp: dict) -> Table:
    t = Table(title="edgekit info", title_justify="left", show_header=False)
    t.add_column("key", style="bold")
    t.add_column("value")
    cpu = fp["cpu"]
    t.add_row("OS / Python", f"{fp['os']} / {fp['python']}")
    t.add_row("CPU", f"{cpu['model']} ({cpu['arch']}, {cpu['cores']} cores)")
    t.add_row("CPU flags", ", ".join(cpu["flags"]) or "none of interest")
    t.add_row("GPU", "; ".join(f"{g['name']} (driver {g['driver']})" for g in fp["gpu"]) or "none")
    t.add_row("runtimes", ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in fp["runtimes"].items()))
    for name, version in fp["packages"].items():
        t.add_row(f"  {name}", version or "not installed")
    return t


def catalog_table(kind: str, loader) -> Table:
    """`edgekit recipes|targets list`: every name the catalog finds, first match first."""
    from .config.catalog import available

    t = Table(title=f"{kind} (first match wins: $EDGEKIT_{kind.upper()}, ./{kind}, shipped)", title_justify="left")
    for col in ("name", "description", "file"):
        t.add_column(col)
    for name, path in available(kind).items():
        t.add_row(name, loader(path).description, str(path))
    return t


def catalog_yaml(kind: str, name: str, loader) -> tuple:
    """`edgekit recipes|targets show`: the file found and its validated content with defaults, as YAML."""
    import yaml

    from .config.catalog import find

    path = find(kind, name)
    return path, yaml.safe_dump(loader(path).model_dump(mode="json", exclude_none=True), sort_keys=False)
