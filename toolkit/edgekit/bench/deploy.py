"""The deploy decision: for each target, measure every artifact it can run, on the target, and choose.

Candidates are benched with a short protocol (`bench.protocol.DEPLOY`) locally or over the target's `host:`.
Those whose export failed, whose parity failed, or whose NME (in that same bench) is over the accuracy budget
are dropped; the fastest p50 of the rest is chosen, and between p50s within `TIE` of each other, the smaller
file. The target's `latency_budget_ms` is then checked against the choice. Everything lands in
`runs/<name>/deploy.json` (`edgekit-deploy/1`), candidates and reasons included.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from ..artifact_record import Status
from ..atomic import write_json
from ..config.target import Target
from ..errors import EdgekitError
from ..jsonio import read_json_object

SCHEMA = "edgekit-deploy/1"
DEPLOY_FILE = "deploy.json"
TIE = 0.02  # p50s closer than this (relative) are a tie; the smaller file wins


@dataclass
class Candidate:
    file: str  # artifact path relative to the run directory
    format: str
    precision: str
    runtime: str
    status: str  # the artifact vocabulary (ok, export-failed, validation-failed, run-failed, ...) or over-budget
    p50_ms: float | None = None
    p90_ms: float | None = None
    p50_ci95: list[float] | None = None
    nme: float | None = None
    size_bytes: int | None = None
    reason: str | None = None

    @property
    def eligible(self) -> bool:
        return self.status == Status.OK and self.p50_ms is not None


@dataclass
class TargetDecision:
    target: str
    status: str  # chosen | none-in-budget | not-measured
    chosen: Candidate | None = None
    candidates: list[Candidate] = field(default_factory=list)
    nme_limit: float | None = None
    latency_budget_ms: dict | None = None
    budget_missed: list[str] = field(default_factory=list)
    reason: str | None = None
    fingerprint: dict | None = None
    host: str = "local"


def run_relative(artifact: str, run_dir: Path) -> str:
    """How deploy.json names an artifact: relative to the run directory when it lies inside it."""
    path = Path(artifact)
    return str(path.relative_to(run_dir)) if path.is_relative_to(run_dir) else str(path)


def candidates_from(records: list[dict], run_dir: Path) -> list[Candidate]:
    out = []
    for r in records:
        lat = r.get("latency") or {}
        nme = (r.get("accuracy") or {}).get("nme")
        out.append(Candidate(file=run_relative(r["artifact"], run_dir),
                             format=r["format"], precision=r["precision"], runtime=r["runtime"], status=r["status"],
                             p50_ms=lat.get("p50"), p90_ms=lat.get("p90"), p50_ci95=lat.get("p50_ci95"), nme=nme,
                             size_bytes=r.get("size_bytes"), reason=r.get("error")))
    return out


def nme_limit(cands: list[Candidate], target: Target, default_increase: float) -> float | None:
    """The NME a candidate may reach: the target's absolute `max_nme`, else the best float candidate's NME in the
    same bench times (1 + the allowed increase). None when nothing sets one."""
    budget = target.accuracy_budget
    if budget is not None and budget.max_nme is not None:
        return budget.max_nme
    increase = budget.max_nme_increase if budget is not None and budget.max_nme_increase is not None \
        else default_increase
    floats = [c.nme for c in cands if c.precision in ("fp32", "fp16") and c.nme is not None and c.status == Status.OK]
    return min(floats) * (1.0 + increase) if floats else None


def choose(cands: list[Candidate], limit: float | None) -> Candidate | None:
    """Drop what is over the accuracy limit (marked), then the fastest p50; near-ties go to the smaller file."""
    for c in cands:
        if c.status == Status.OK and limit is not None and c.nme is not None and c.nme > limit:
            c.status, c.reason = "over-budget", f"NME {100 * c.nme:.2f}% > {100 * limit:.2f}%"
    ok = sorted((c for c in cands if c.eligible), key=lambda c: c.p50_ms)
    if not ok:
        return None
    fastest = ok[0].p50_ms
    ties = [c for c in ok if c.p50_ms <= fastest * (1.0 + TIE)]
    return min(ties, key=lambda c: (c.size_bytes or 0, c.p50_ms))


def latency_misses(choice: Candidate, budget) -> list[str]:
    if budget is None:
        return []
    misses = []
    for q, value in (("p50", choice.p50_ms), ("p90", choice.p90_ms)):
        limit = getattr(budget, q, None)
        if limit is not None and value is not None and value > limit:
            misses.append(f"latency_budget_ms.{q}: {choice.file} on {choice.runtime} runs {value:.3f} ms "
                          f"(budget {limit:.3f} ms)")
    return misses


def decide_target(run_dir: Path, target: Target, default_increase: float, progress: bool = True,
                  data: str | None = "synth:test") -> TargetDecision:
    """`data=None`: no labels to score on here (your own model on unlabeled crops); accuracy then rests on each
    artifact's export parity check, and the choice is by latency alone."""
    from .api import BenchOptions, bench
    from .protocol import DEPLOY

    opts = BenchOptions(run=run_dir, reference=False, protocol=DEPLOY, out=run_dir / "bench" / "deploy" /
                        target.name, progress=progress, data=data or "synth:test",
                        eval_images=0 if data is None else None)
    budget = target.latency_budget_ms.model_dump(exclude_none=True) if target.latency_budget_ms else None
    try:
        doc, _ = bench(target, opts)
    except EdgekitError as exc:  # e.g. a GPU target on a CPU machine with no host: say so, do not fail the run
        return TargetDecision(target=target.name, status="not-measured", reason=str(exc), latency_budget_ms=budget)
    cands = candidates_from(doc["records"], run_dir)
    limit = nme_limit(cands, target, default_increase)
    choice = choose(cands, limit)
    fp = next((r.get("fingerprint") for r in doc["records"] if r.get("fingerprint")), None)
    decision = TargetDecision(target=target.name, status="chosen" if choice else "none-in-budget", chosen=choice,
                              candidates=cands, nme_limit=limit, fingerprint=fp, host=doc.get("host", "local"),
                              latency_budget_ms=budget)
    if choice is None:
        decision.reason = "no candidate ran within the accuracy budget"
        decision.budget_missed = [f"{target.name}: {decision.reason}"]
    else:
        decision.budget_missed = [f"{target.name}: {m}" for m in latency_misses(choice, target.latency_budget_ms)]
    return decision


def decide(run_dir: Path, targets: list[Target], default_increase: float, progress: bool = True,
           data: str | None = "synth:test") -> dict:
    """Decide every target and write deploy.json; returns its document."""
    decisions = [decide_target(run_dir, t, default_increase, progress, data) for t in targets]
    doc = {"schema": SCHEMA, "run": str(run_dir), "tie": TIE, "targets": {d.target: asdict(d) for d in decisions}}
    write_json(run_dir / DEPLOY_FILE, doc)
    return doc


def deploy_summary(doc: dict) -> dict:
    """The manifest's short form: per target, the status and the chosen file, runtime, p50 and NME."""
    out = {}
    for name, d in doc["targets"].items():
        c = d.get("chosen") or {}
        out[name] = {"status": d["status"], "file": c.get("file"), "runtime": c.get("runtime"),
                     "precision": c.get("precision"), "p50_ms": c.get("p50_ms"), "nme": c.get("nme"),
                     "candidates": len(d["candidates"]), "reason": d.get("reason"), "missed": d["budget_missed"]}
    return out


def chosen_files(run_dir: Path) -> dict[str, tuple[str, str]]:
    """target -> (artifact file, runtime) chosen in the run's deploy.json ({} when there is none)."""
    path = run_dir / DEPLOY_FILE
    if not path.exists():
        return {}
    doc = read_json_object(path, "deploy decision")
    out = {}
    for name, d in (doc.get("targets") or {}).items():
        c = d.get("chosen") if isinstance(d, dict) else None
        if isinstance(c, dict) and isinstance(c.get("file"), str):
            out[name] = (c["file"], c.get("runtime"))
    return out

