"""`--recipe auto`'s `auto.json` (`edgekit-auto/1`) as one typed document: the search writes it, the CLI's table
and its exit code read it."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from ..atomic import write_json
from ..errors import EdgekitError
from ..jsonio import read_json_object

SCHEMA = "edgekit-auto/1"
AUTO_FILE = "auto.json"


@dataclass
class AutoPoint:
    """One measured artifact of one grid point."""

    point: str
    file: str  # relative to the auto run directory
    format: str
    precision: str
    runtime: str
    status: str
    p50_ms: float | None = None
    p90_ms: float | None = None
    p50_ci95_ms: list[float] | None = None  # the sweep's 95% interval of the p50: the front's noise measure
    nme: float | None = None
    size_bytes: int | None = None
    macs: int | None = None

    @property
    def label(self) -> str:
        return f"{self.file} {self.runtime}"

    @classmethod
    def from_json(cls, doc, where: Path | str) -> AutoPoint:
        if not isinstance(doc, dict) or not all(isinstance(doc.get(k), str) for k in ("point", "file", "runtime")):
            raise EdgekitError("key 'points': expected objects with point, file and runtime", path=where)
        names = {f.name for f in fields(cls)}
        return cls(**{"format": "", "precision": "", "status": "", **{k: v for k, v in doc.items() if k in names}})


@dataclass
class AutoResult:
    target: str
    budget_ms: float
    budget_source: str  # where the budget came from (the flag, the target, or 1/8 of the teacher)
    points: list[AutoPoint] = field(default_factory=list)
    front: list[str] = field(default_factory=list)  # AutoPoint.label of the latency/NME front, fastest first
    chosen: AutoPoint | None = None
    ties: dict = field(default_factory=dict)  # what the front and the choice count as equal (auto/choice.py)
    skipped: list[dict] = field(default_factory=list)  # grid points the time budget left out, with the reason
    teacher_p50_ms: float | None = None
    teacher_nme: float | None = None
    fingerprint: dict | None = None
    bench: dict = field(default_factory=dict)  # the bench report's files
    wall_s: float | None = None
    schema: str = SCHEMA

    def to_json(self) -> dict:
        out = asdict(self)
        out["chosen"] = asdict(self.chosen) if self.chosen else None
        return out

    def write(self, run_dir: Path) -> None:
        write_json(run_dir / AUTO_FILE, self.to_json())

    @classmethod
    def from_json(cls, doc: dict, where: Path | str) -> AutoResult:
        if not isinstance(doc.get("budget_ms"), (int, float)) or not isinstance(doc.get("points"), list):
            raise EdgekitError("expected an auto result with 'budget_ms' and 'points'", path=where)
        names = {f.name for f in fields(cls)} - {"points", "chosen"}
        chosen = doc.get("chosen")
        return cls(**{"target": "", "budget_source": "", **{k: v for k, v in doc.items() if k in names}},
                   points=[AutoPoint.from_json(p, where) for p in doc["points"]],
                   chosen=AutoPoint.from_json(chosen, where) if chosen is not None else None)

    @classmethod
    def read(cls, run_dir: Path) -> AutoResult:
        path = run_dir / AUTO_FILE
        return cls.from_json(read_json_object(path, "auto result"), path)
