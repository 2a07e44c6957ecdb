"""Import every module of a package, so that the files which register themselves on import (stages, formats,
runtimes) are all known. Standard library only: the device-side runner bundle carries it."""

from __future__ import annotations

import importlib
import pkgutil


def import_modules(package: str, skip: frozenset[str] = frozenset()) -> None:
    """Every module of `package`, in name order, including those of folders appended to its `__path__`; names
    starting with `_` and those in `skip` are left out."""
    pkg = importlib.import_module(package)  # dynamic: the package may import the registry that calls this
    for mod in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if not mod.name.startswith("_") and mod.name not in skip:
            importlib.import_module(f"{package}.{mod.name}")
