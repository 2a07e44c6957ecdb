"""Find recipes and targets by name: $EDGEKIT_RECIPES / $EDGEKIT_TARGETS, ./recipes (or ./targets), then the
ones that ship with edgekit: beside the source in a checkout, or under <prefix>/share/edgekit/ when installed from
a wheel (pyproject's data-files put them there)."""

from __future__ import annotations

import os
import site
import sys
from pathlib import Path

from ..errors import EdgekitError

CHECKOUT_ROOT = Path(__file__).resolve().parents[3]  # a source checkout: toolkit/edgekit/config -> repo root


def shipped_roots() -> list[Path]:
    roots = [CHECKOUT_ROOT, Path(sys.prefix) / "share" / "edgekit"]
    if site.ENABLE_USER_SITE and site.USER_BASE:  # pip install --user
        roots.append(Path(site.USER_BASE) / "share" / "edgekit")
    return roots


def search_dirs(kind: str) -> list[Path]:
    dirs = []
    env = os.environ.get(f"EDGEKIT_{kind.upper()}")
    if env:
        dirs.append(Path(env))
    dirs += [Path.cwd() / kind, *(root / kind for root in shipped_roots())]
    seen, out = set(), []
    for d in dirs:
        r = d.resolve()
        if r not in seen and r.is_dir():
            seen.add(r)
            out.append(r)
    return out


def available(kind: str) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in search_dirs(kind):
        for p in sorted(d.glob("*.yaml")):
            found.setdefault(p.stem, p)
    return found


def find(kind: str, name_or_path: str) -> Path:
    """A YAML path as given, or a name looked up in the search dirs."""
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise EdgekitError(f"{kind[:-1]} file not found", path=p)
        return p
    names = available(kind)
    if name_or_path not in names:
        raise EdgekitError(f"no {kind[:-1]} named {name_or_path!r}; available: {', '.join(names) or 'none'}")
    return names[name_or_path]
