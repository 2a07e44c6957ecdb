"""deploy.json on disk (`edgekit-deploy/1`): one typed document, written by the decision (`bench.deploy`) and read
through this module by everything else (the manifest's summary, bench's chosen cell, the CLI).

Apart from the decision, so that bench can mark the chosen cell without importing the decision, which itself runs
bench.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..artifact_record import Status
from ..atomic import write_json
from ..errors import EdgekitError
from ..jsonio import read_json_object

SCHEMA = "edgekit-deploy/1"
DEPLOY_FILE = "deploy.json"


def run_relative(artifact: str, run_dir: Path) -> str:
    """How deploy.json names an artifact: relative to the run directory when it lies inside it."""
    path = Path(artifact)
    return str(path.relative_to(run_dir)) if path.is_relative_to(run_dir) else str(path)


def _names(cls) -> set[str]:
    return {f.name for f in fields(cls)}


@dataclass
class Candidate:
    file: str  # artifact path relative to the run directory
    format: str
    precision: str
    runtime: str
    status: str  # the artifact vocabulary (ok, export-failed, validation-failed, run-failed, ...), over-budget
    p50_ms: float | None = None
    p90_ms: float | None = None
    p99_ms: float | None = None
    p50_ci95: list[float] | None = None
    nme: float | None = None
    size_bytes: int | None = None
    reason: str | None = None
    evidence: dict | None = None  # AccuracyEvidence.to_json(): why it is in or over the accuracy budget
    fingerprint: dict | None = None  # the machine and runtime versions it was measured with
    nme_per_image: list[float] | None = field(default=None, repr=False)  # not written to deploy.json
    slices: dict | None = field(default=None, repr=False)  # NME per robustness slice; not written either

    @property
    def eligible(self) -> bool:
        return self.status == Status.OK and self.p50_ms is not None

    @property
    def interval(self) -> tuple[float, float]:
        ci = self.p50_ci95 if self.p50_ci95 and len(self.p50_ci95) == 2 else [self.p50_ms, self.p50_ms]
        return float(ci[0]), float(ci[1])

    def to_json(self) -> dict:
        out = asdict(self)
        out.pop("nme_per_image")
        out.pop("slices")
        return out

    @classmethod
    def from_json(cls, doc, where: Path | str) -> Candidate:
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("file", "runtime", "status")):
            raise EdgekitError("key 'targets.*.candidates': expected objects with file, runtime and status",
                               path=where)
        return cls(**{k: v for k, v in doc.items() if k in _names(cls) and k != "nme_per_image"})


@dataclass
class TargetDecision:
    target: str
    status: str  # chosen | proxy | none-in-budget | not-measured
    chosen: Candidate | None = None  # for a proxy: the file it would pick
    candidates: list[Candidate] = field(default_factory=list)
    nme_limit: float | None = None
    latency_budget_ms: dict | None = None
    budget_missed: list[str] = field(default_factory=list)
    budget_unverified: list[str] = field(default_factory=list)  # a proxy's budgets: measured elsewhere
    reason: str | None = None
    fingerprint: dict | None = None
    host: str = "local"
    measured_on: str | None = None  # "x86_64 AMD EPYC (2 cores)", from the fingerprint
    tie_with: list[str] = field(default_factory=list)
    # A fleet target: its hosts, the outliers, and the hosts whose own fastest file is not the class's choice.
    fleet: dict | None = None

    def to_json(self) -> dict:
        out = asdict(self)
        out["chosen"] = self.chosen.to_json() if self.chosen else None
        out["candidates"] = [c.to_json() for c in self.candidates]
        return out

    @classmethod
    def from_json(cls, doc, where: Path | str) -> TargetDecision:
        if not isinstance(doc, dict) or not isinstance(doc.get("status"), str):
            raise EdgekitError("key 'targets': expected an object per target with a status", path=where)
        fields_ = {k: v for k, v in doc.items() if k in _names(cls)}
        chosen = doc.get("chosen")
        fields_["chosen"] = Candidate.from_json(chosen, where) if chosen is not None else None
        fields_["candidates"] = [Candidate.from_json(c, where) for c in doc.get("candidates") or []]
        return cls(**{"target": "", **fields_})


@dataclass
class DeployDocument:
    run: str
    tie: float
    targets: dict[str, TargetDecision] = field(default_factory=dict)
    schema: str = SCHEMA

    def to_json(self) -> dict:
        return {"schema": self.schema, "run": self.run, "tie": self.tie,
                "targets": {k: d.to_json() for k, d in self.targets.items()}}

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / DEPLOY_FILE, self.to_json())

    @property
    def budget_missed(self) -> list[str]:
        return [m for d in self.targets.values() for m in d.budget_missed]

    @classmethod
    def from_json(cls, doc: dict, where: Path | str) -> DeployDocument:
        targets = doc.get("targets") or {}
        if not isinstance(targets, dict):
            raise EdgekitError("key 'targets': expected an object of target name -> decision", path=where)
        return cls(run=str(doc.get("run", "")), tie=float(doc.get("tie", 0.0)), schema=str(doc.get("schema", SCHEMA)),
                   targets={k: TargetDecision.from_json({"target": k, **d} if isinstance(d, dict) else d, where)
                            for k, d in targets.items()})

    @classmethod
    def read(cls, run_dir: Path) -> DeployDocument | None:
        """The run's deploy.json, or None when it has none."""
        path = run_dir / DEPLOY_FILE
        return cls.from_json(read_json_object(path, "deploy decision"), path) if path.exists() else None


def chosen_files(run_dir: Path) -> dict[str, tuple[str, str, str]]:
    """target -> (artifact file, runtime, status) that the run's deploy.json picked ({} when there is none);
    status is `chosen`, or `proxy` for a pick measured off the target's hardware."""
    doc = DeployDocument.read(run_dir)
    if doc is None:
        return {}
    return {name: (d.chosen.file, d.chosen.runtime, d.status) for name, d in doc.targets.items() if d.chosen}


def deploy_summary(doc: DeployDocument) -> dict:
    """The manifest's short form: per target, the status and the chosen file, runtime, p50 and NME."""
    out = {}
    for name, d in doc.targets.items():
        c = d.chosen
        out[name] = {"status": d.status, "file": c and c.file, "runtime": c and c.runtime,
                     "precision": c and c.precision, "p50_ms": c and c.p50_ms, "nme": c and c.nme,
                     "candidates": len(d.candidates), "reason": d.reason, "missed": d.budget_missed,
                     "unverified": d.budget_unverified, "measured_on": d.measured_on}
    return out
