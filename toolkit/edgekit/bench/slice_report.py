"""The bench report's robustness slices: NME per slice and artifact, as a table and a grouped bar plot."""

from __future__ import annotations

import html
from pathlib import Path

from ..atomic import write_with
from ..slices import SLICES


def slice_cells(doc: dict) -> list[tuple[str, dict]]:
    """(label, {slice: {"n", "nme"}}) for every record that measured accuracy with slices, in record order."""
    out = []
    for r in doc["records"]:
        slices = (r.get("accuracy") or {}).get("slices")
        if slices:
            out.append((f"{r['variant']} {r['precision']} {r['format']}/{r['runtime']}", slices))
    return out


def _names(cells: list[tuple[str, dict]]) -> list[str]:
    """Slices in their defined order that some record has images in."""
    return [s.name for s in SLICES if any((c.get(s.name) or {}).get("n") for _, c in cells)]


def slices_png(doc: dict, path: Path) -> Path | None:
    """One group of bars per slice (labelled with its image count), one bar per artifact; None: nothing to plot."""
    cells = slice_cells(doc)
    names = _names(cells)
    if not names:
        return None
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(9, 4.5), dpi=120)
    width = 0.8 / len(cells)
    for i, (label, c) in enumerate(cells):
        values = [100 * (c.get(n) or {}).get("nme") if (c.get(n) or {}).get("nme") is not None else np.nan
                  for n in names]
        ax.bar(np.arange(len(names)) + i * width, values, width, label=label)
    counts = {n: max((c.get(n) or {}).get("n", 0) for _, c in cells) for n in names}
    ax.set_xticks(np.arange(len(names)) + 0.4 - width / 2, [f"{n}\n({counts[n]})" for n in names], fontsize=8)
    ax.set_ylabel("NME (%)")
    ax.set_title(f"NME per robustness slice (images per slice), target {doc['target']}")
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=7, frameon=False)
    ax.grid(True, axis="y", alpha=0.3)
    fig.tight_layout()
    write_with(path, lambda tmp: fig.savefig(tmp, format="png"))
    plt.close(fig)
    return path


def slices_html(doc: dict, png: Path | None) -> str:
    """The report's section: the plot and a table (NME % and images per slice and artifact)."""
    cells = slice_cells(doc)
    names = _names(cells)
    if not names:
        return ""
    import base64

    esc = html.escape
    head = "<th>artifact</th>" + "".join(f"<th>{esc(n)}</th>" for n in names)
    body = ""
    for label, c in cells:
        tds = "".join(f"<td>{100 * c[n]['nme']:.2f}% ({c[n]['n']})</td>" if (c.get(n) or {}).get("nme") is not None
                      else "<td>-</td>" for n in names)
        body += f"<tr><td>{esc(label)}</td>{tds}</tr>"
    what = "; ".join(f"{s.name}: {s.description}" for s in SLICES if s.name in names)
    img = (f'<img alt="NME per slice" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
           if png and png.exists() else "")
    return (f"<h2>Robustness slices</h2>{img}<table><tr>{head}</tr>{body}</table>"
            f"<p>NME % (images). {esc(what)}.</p>")
