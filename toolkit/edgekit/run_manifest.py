"""A compress run's `manifest.json` (`edgekit-run/1`) as one typed record: the pipeline writes it, and the run
table, `edgekit bench`, `--recipe auto` and the CLI's exit code read it through this class only.

A manifest on disk that is not one (bad JSON, a missing or mistyped key) is a one-line error naming the file and
the key.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from .artifact_record import ArtifactRecord
from .atomic import write_json
from .errors import EdgekitError
from .jsonio import read_json_object

MANIFEST = "manifest.json"
SCHEMA = "edgekit-run/1"


@dataclass
class Step:
    """One row of the result table: a model state after a stage."""

    name: str
    kind: str  # "source" (the teacher or the user's model), else the stage kind
    key: str
    params: int
    macs: int
    size_bytes: int
    metrics: dict
    artifact: str
    wall_s: float = 0.0
    cached: bool = False
    extra: dict = field(default_factory=dict)  # the stage's own details (StageReport.extra)
    precision: str = "fp32"  # of `artifact`
    warnings: list[str] = field(default_factory=list)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, doc, where: Path | str) -> Step:
        if not isinstance(doc, dict) or not isinstance(doc.get("name"), str):
            raise EdgekitError("key 'steps': expected a list of steps with names", path=where)
        if not isinstance(doc.get("metrics", {}), dict):
            raise EdgekitError(f"key 'steps.{doc['name']}.metrics': expected an object", path=where)
        known = {f.name for f in fields(cls)}
        # precision "": a manifest from before it was recorded (bench reads it from the artifact)
        defaults = {"kind": "", "key": "", "params": 0, "macs": 0, "size_bytes": 0, "metrics": {}, "artifact": "",
                    "precision": ""}
        return cls(**{**defaults, **{k: v for k, v in doc.items() if k in known}})


@dataclass
class Acceptance:
    """The recipe's `accept:` budgets against the final model and the artifacts; `missed` holds one line each."""

    met: bool
    missed: list[str] = field(default_factory=list)
    teacher_nme: float | None = None
    final_nme: float | None = None
    budgets: dict = field(default_factory=dict)

    def add_missed(self, lines: list[str]) -> None:
        self.missed += lines
        self.met = self.met and not lines

    @classmethod
    def from_json(cls, doc, where: Path | str) -> Acceptance:
        if not isinstance(doc, dict) or not isinstance(doc.get("met"), bool):
            raise EdgekitError("key 'accept': expected an object with 'met' (true or false)", path=where)
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in known})


@dataclass
class RunManifest:
    recipe: dict
    recipe_hash: str
    steps: list[Step]
    recipe_path: str | None = None
    targets: list[dict] = field(default_factory=list)
    inputs: dict = field(default_factory=dict)
    versions: dict = field(default_factory=dict)
    torch_threads: int | None = None
    artifacts: list[ArtifactRecord] = field(default_factory=list)
    accept: Acceptance | None = None
    deploy: dict | None = None  # per target: `bench.deploy.deploy_summary` of deploy.json
    schema: str = SCHEMA

    @property
    def source(self) -> Step:
        """The first row: the teacher, or your own model."""
        return self.steps[0]

    @property
    def final(self) -> Step:
        return self.steps[-1]

    @property
    def missed(self) -> list[str]:
        return list(self.accept.missed) if self.accept else []

    def to_json(self) -> dict:
        out = {"schema": self.schema, "recipe": self.recipe, "recipe_path": self.recipe_path,
               "recipe_hash": self.recipe_hash, "targets": self.targets, "inputs": self.inputs,
               "versions": self.versions, "torch_threads": self.torch_threads,
               "steps": [s.to_json() for s in self.steps], "artifacts": [a.to_json() for a in self.artifacts]}
        if self.accept is not None:
            out["accept"] = asdict(self.accept)
        if self.deploy is not None:
            out["deploy"] = self.deploy
        return out

    def write(self, run_dir: Path) -> Path:
        return write_json(run_dir / MANIFEST, self.to_json())

    @classmethod
    def from_json(cls, doc: dict, where: Path | str) -> RunManifest:
        steps = doc.get("steps", [])
        if not isinstance(steps, list):
            raise EdgekitError("key 'steps': expected a list of steps with names", path=where)
        artifacts = doc.get("artifacts", [])
        if not isinstance(artifacts, list) or not all(isinstance(a, dict) and isinstance(a.get("file"), str)
                                                      for a in artifacts):
            raise EdgekitError("key 'artifacts': expected a list of sidecars with a file name", path=where)
        accept = doc.get("accept")
        return cls(recipe=doc.get("recipe") or {}, recipe_hash=str(doc.get("recipe_hash", "")),
                   steps=[Step.from_json(s, where) for s in steps], recipe_path=doc.get("recipe_path"),
                   targets=doc.get("targets") or [], inputs=doc.get("inputs") or {},
                   versions=doc.get("versions") or {}, torch_threads=doc.get("torch_threads"),
                   artifacts=[ArtifactRecord.from_json(a, where) for a in artifacts],
                   accept=Acceptance.from_json(accept, where) if accept is not None else None,
                   deploy=doc.get("deploy"), schema=str(doc.get("schema", SCHEMA)))

    @classmethod
    def read(cls, run_dir: Path) -> RunManifest:
        path = run_dir / MANIFEST
        if not path.exists():
            raise EdgekitError(f"not a finished compress run (no {MANIFEST})", path=run_dir)
        return cls.from_json(read_json_object(path, "compress run manifest"), path)
