"""The runtime registry: every file in this package that calls `register` adds one or more runtimes.

A runtime file declares the rows it serves (name, the files it opens, the modules and packages it needs, whether
it needs a GPU) and holds its loader. `edgekit.runtime.load`, `preload`, the remote runner's module bundle and
the fingerprint's package list are all read from here, so a new runtime is one file in `edgekit/runtime/`.

Standard library only: the device-side bench runner carries this module (see `bench/remote.py`).
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..scan import import_modules

PACKAGE = __name__.rpartition(".")[0]  # edgekit.runtime
_NOT_RUNTIMES = frozenset({"registry", "timing"})  # the package's helpers, not runtime files


class RuntimeUnavailable(RuntimeError):
    """The runtime cannot run here (not installed, no GPU, wrong artifact type)."""


@dataclass(frozen=True)
class Runtime:
    name: str  # concrete runtime, as a bench cell and `edgekit.runtime.load` name it
    family: str  # the name a target file uses; a GPU target gets the family's gpu row
    format: str  # the artifact format it runs (a name from edgekit.formats)
    opens: tuple[str, ...]  # file suffixes it loads (the device runner has no format table)
    gpu: bool
    modules: tuple[str, ...]  # import names; any one importable means the runtime is installed
    packages: tuple[str, ...]  # distribution names, for the fingerprint and cache keys
    loader: Callable  # (path, runtime name, threads, xnnpack) -> session
    description: str
    device_side: bool = True  # the remote runner carries its file (numpy + the runtime itself only)
    symmetric_int8: bool = False  # its INT8 needs symmetric activations (zero-point 0)
    default_for_files: bool = True  # may be the runtime a bare file implies (a browser never is)

    @property
    def module_file(self) -> str:
        """The runtime file, relative to the edgekit package (what the remote bundle copies)."""
        return self.loader.__module__.split(".", 1)[1].replace(".", "/") + ".py"

    def installed(self) -> bool:
        return any(_importable(m) for m in self.modules)


_REGISTRY: dict[str, Runtime] = {}
_SCANNED = False


def register(*rows: Runtime) -> None:
    for row in rows:
        _REGISTRY[row.name] = row


def runtimes() -> dict[str, Runtime]:
    """Runtime name -> row, from every runtime file of the package (imported on first use)."""
    global _SCANNED
    if not _SCANNED:
        import_modules(PACKAGE, skip=_NOT_RUNTIMES)
        _SCANNED = True
    return dict(_REGISTRY)


def runtime(name: str) -> Runtime:
    found = runtimes().get(name)
    if found is None:
        raise RuntimeUnavailable(f"unknown runtime {name!r}; expected one of {', '.join(runtimes())}")
    return found


def target_runtime_names() -> tuple[str, ...]:
    """The names a target file may list: each family once (its CPU row, or its only row)."""
    return tuple(dict.fromkeys(r.family for r in runtimes().values()))


def runs(name: str, path: str | Path) -> bool:
    row = runtimes().get(name)
    return row is not None and Path(path).suffix in row.opens


def runtime_for(family: str, gpu: bool) -> str:
    """A target's runtime name -> the concrete runtime on that hardware (GPU targets use the CUDA rows)."""
    rows = [r for r in runtimes().values() if r.family == family]
    return next((r.name for r in rows if r.gpu == gpu), rows[0].name if rows else family)


def default_runtime_name(path: str | Path) -> str | None:
    """The CPU runtime for a file (the first row that opens it), or None."""
    rows = [r for r in runtimes().values() if Path(path).suffix in r.opens and r.default_for_files]
    return next((r.name for r in rows if not r.gpu), rows[0].name if rows else None)


def known_suffixes() -> list[str]:
    return sorted({s for r in runtimes().values() for s in r.opens})


def runtime_packages() -> tuple[str, ...]:
    """Every runtime's distributions, in registry order (fingerprint and cache keys)."""
    return tuple(dict.fromkeys(p for r in runtimes().values() for p in r.packages))


def installed_families() -> dict[str, bool]:
    """Runtime family -> installed here (the fingerprint's `runtimes`)."""
    out: dict[str, bool] = {}
    for r in runtimes().values():
        out[r.family] = out.get(r.family, False) or r.installed()
    return out


def device_side_files() -> tuple[str, ...]:
    """The runtime files the remote bench runner carries."""
    return tuple(dict.fromkeys(r.module_file for r in runtimes().values() if r.device_side))


def preload(name: str) -> None:
    """Import a runtime's library without a session (the bench measures the model's memory apart from the
    library's). A runtime that is missing is left for `load` to report."""
    row = runtimes().get(name)
    for module in row.modules if row else ():
        try:
            importlib.import_module(module)
            return
        except ImportError:
            continue


def _importable(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing
        return False
