"""The format registry: every artifact format is one file in `edgekit/export/exporters/` that subclasses `Format`
and calls `register_format` with it.

A format says what its files are called, which precisions it can hold, which (target, precision) pairs it serves
and how it builds an artifact from the compressed model (`build`). Export's plan and build step, bench's cells,
the target schema and the precision reader all ask these objects; no format name is compared outside its file.
Runtimes are the other half (`edgekit/runtime/registry.py`): they name the format they run.

Standard library only, and nothing heavy at import: the target schema reads it, and the exporter files import
their converters (torch, onnx, litert-torch, TensorRT) inside `build`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .scan import import_modules

if TYPE_CHECKING:
    from .config.target import Target
    from .export.sources import ExportSources, Planned

PRECISIONS = ("fp32", "fp16", "int8")
EXPORTERS_PACKAGE = "edgekit.export.exporters"


class Format:
    """One artifact format and its exporter. Subclasses set the class attributes and override what differs."""

    name: str = ""
    suffixes: tuple[str, ...] = ()  # the first is what export writes
    precisions: tuple[str, ...] = PRECISIONS  # what export can write in this format
    exported: bool = True  # written by the export phase (pytorch is the training checkpoint: not exported)
    description: str = ""
    packages: tuple[str, ...] = ()  # what builds it: their versions key the export cache
    checked_here: bool = True  # parity through its runtime right after export (an engine is checked where it runs)
    from_torch: bool = False  # built from the PyTorch model (an ONNX model of yours is converted to PyTorch first)
    int8_from_qdq: bool = False  # its INT8 file is built from the quantize stage's QDQ ONNX model
    symmetric_int8: bool = False  # its INT8 needs symmetric activations (zero-point 0)

    def filename(self, precision: str, variant: str | None = None) -> str:
        return f"model.{precision}{self.suffixes[0]}"

    def variant(self, target: Target, precision: str) -> str | None:
        """What else than (format, precision) tells two files apart (the INT8 QDQ scheme), or None."""
        return None

    def serves(self, target: Target, precision: str) -> bool:
        """Whether `target`, which lists this format and precision, takes such a file."""
        return True

    def build(self, planned: Planned, src: ExportSources, out_dir: Path, targets: list[Target],
              progress: bool = False) -> tuple[Path, dict]:
        """Write one artifact into `out_dir`; return its path and extra sidecar fields. Raise
        `export.sources.BuildOnDevice` when it can only be built on the device (after writing how)."""
        raise NotImplementedError(f"format {self.name!r} has no exporter")

    def precision_of(self, path: Path) -> str | None:
        """The precision read from the file itself, or None when it cannot be read here."""
        return None


_REGISTRY: dict[str, Format] = {}
_SCANNED = False


def register_format(fmt: Format) -> Format:
    if not fmt.name or not fmt.suffixes:
        raise ValueError(f"{type(fmt).__name__}: a format needs a name and at least one suffix")
    _REGISTRY[fmt.name] = fmt
    return fmt


def formats() -> dict[str, Format]:
    """Format name -> format, from every file of the exporters package (imported on first use)."""
    global _SCANNED
    if not _SCANNED:
        import_modules(EXPORTERS_PACKAGE)
        _SCANNED = True
    return dict(_REGISTRY)


def format_named(name: str) -> Format:
    found = formats().get(name)
    if found is None:
        raise KeyError(f"unknown format {name!r}; expected one of {', '.join(formats())}")
    return found


def exported_format_names() -> tuple[str, ...]:
    """The names a target file may list under `formats`."""
    return tuple(f.name for f in formats().values() if f.exported)


def format_of(path: str | Path) -> str | None:
    """The format a file's suffix says, or None."""
    suffix = Path(path).suffix
    return next((f.name for f in formats().values() if suffix in f.suffixes), None)


def precision_in_name(path: str | Path) -> str:
    """`model.int8.onnx` -> int8: the precision a file name says (fp32 when it says none). A fallback only;
    edgekit reads the precision from the file where it can (`Format.precision_of`)."""
    return next((p for p in Path(path).name.split(".") if p in PRECISIONS), "fp32")


def known_suffixes() -> list[str]:
    return sorted({s for f in formats().values() for s in f.suffixes})
