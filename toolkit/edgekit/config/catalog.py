"""Find recipes and targets by name: ./recipes (or ./targets), $EDGEKIT_RECIPES / $EDGEKIT_TARGETS, then the
ones that ship with edgekit."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import EdgekitError

SHIPPED_ROOT = Path(__file__).resolve().parents[3]  # the checkout: toolkit/edgekit/config -> repo root


def search_dirs(kind: str) -> list[Path]:
    dirs = []
    env = os.environ.get(f"EDGEKIT_{kind.upper()}")
    if env:
        dirs.append(Path(env))
    dirs += [Path.cwd() / kind, SHIPPED_ROOT / kind]
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
