"""The artifact sidecar (`<file>.json` beside every exported model) as one typed record, and the one status
vocabulary that export, compress's acceptance check and bench all use.

Read and written only here, so a field or a status word has one spelling.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from enum import Enum
from pathlib import Path

from .atomic import write_json
from .errors import EdgekitError
from .formats import format_of, precision_in_name
from .jsonio import read_json_object

SIDECAR_SCHEMA = "edgekit-artifact/1"


class Status(str, Enum):
    """What became of an artifact; bench cells use the same words (plus run-failed, set when measuring)."""

    OK = "ok"
    VALIDATION_FAILED = "validation-failed"  # built, but its parity check missed the accuracy budget
    EXPORT_FAILED = "export-failed"  # building it raised; the error is recorded
    BUILD_ON_DEVICE = "build-on-device"  # a TensorRT engine left for the device to build with the script
    RUN_FAILED = "run-failed"  # bench only: the runtime raised or the runner died
    TIMEOUT = "timeout"  # bench only: a trial hung past its time limit; that cell stops, the sweep goes on

    def __str__(self) -> str:
        return self.value


def parse_status(value, where: Path | str = "sidecar") -> Status:
    try:
        return Status(value)
    except ValueError:
        raise EdgekitError(f"key 'status': expected one of {', '.join(s.value for s in Status)}, got {value!r}",
                           path=where) from None


@dataclass
class ArtifactRecord:
    format: str
    precision: str
    file: str
    status: Status = Status.OK
    key: str = ""  # identity of the sources and settings it was built from
    targets: list[str] = field(default_factory=list)
    edgekit_version: str = ""
    preprocess: dict | None = None  # input_size, mean, std, layout, color: how to feed it
    size_bytes: int | None = None
    sha256: str | None = None
    parity: dict | None = None  # the check against the PyTorch model (edgekit.export.parity)
    # The file's own NME on the recipe's evaluation split and real faces ({nme, n, real_nme}): what the recipe's
    # accept budgets judge when the deploy decision picks this file rather than the step table's model.
    accuracy: dict | None = None
    error: str | None = None
    traceback: str | None = None
    details: dict = field(default_factory=dict)  # format-specific fields (io, fallback, build_script, ...)
    schema: str = SIDECAR_SCHEMA
    cached: bool = False  # reused from an earlier run (the manifest says so; a sidecar on disk never does)

    def to_json(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k != "details" and v is not None
               and not (k == "cached" and not v)}
        out["status"] = self.status.value
        return {**out, **self.details}

    @classmethod
    def from_json(cls, doc: dict, where: Path | str = "sidecar") -> ArtifactRecord:
        missing = [k for k in ("format", "precision", "file") if not isinstance(doc.get(k), str)]
        if missing:
            raise EdgekitError(f"key {missing[0]!r}: expected a string in an artifact sidecar", path=where)
        status = parse_status(doc.get("status", "ok"), where)
        targets = doc.get("targets", [])
        if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
            raise EdgekitError("key 'targets': expected a list of target names in an artifact sidecar", path=where)
        known = {f.name for f in fields(cls)} - {"details", "status"}
        return cls(status=status, **{k: v for k, v in doc.items() if k in known},
                   details={k: v for k, v in doc.items() if k not in known and k != "status"})


def sidecar_path(artifact: Path) -> Path:
    return artifact.with_name(artifact.name + ".json")


def read_sidecar(path: Path) -> ArtifactRecord:
    """The sidecar at `path` (bad JSON or a bad field: one-line EdgekitError naming the file)."""
    return ArtifactRecord.from_json(read_json_object(path, "artifact sidecar"), path)


def read_sidecar_of(artifact: Path) -> ArtifactRecord | None:
    """The sidecar beside `artifact`, if any. Hand-made sidecars may leave out what the file itself says
    (format, precision, name); those come from the artifact's path."""
    side = sidecar_path(artifact)
    if not side.exists():
        return None
    doc = read_json_object(side, "artifact sidecar")
    defaults = {"format": format_of(artifact) or artifact.suffix.lstrip("."), "precision": precision_in_name(artifact),
                "file": artifact.name}
    return ArtifactRecord.from_json({**defaults, **doc}, side)


def write_sidecar(path: Path, record: ArtifactRecord) -> None:
    write_json(path, record.to_json())
