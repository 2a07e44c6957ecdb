"""The deploy decision: for each target, measure every artifact it can run, on the target, and choose.

Candidates are benched with a short protocol (`bench.protocol.DEPLOY`) locally or over the target's `host:`.
Those whose export failed, whose parity failed, whose NME was not measured, or whose NME is shown over the accuracy
budget (`bench.evidence`: paired, per image, against the best float artifact, with 95% confidence) are dropped, and
so, in a compress run, are files whose own NME breaks the recipe's `max_nme_ratio` (evaluation split), then its
`max_real_nme_ratio` (each real set), while another file keeps that budget.
The fastest p50 of the rest is chosen; candidates whose p50 intervals overlap the fastest's within `TIE` are a tie,
and the smaller file wins. The target's `latency_budget_ms` (p50, p90, p99) is then checked against the choice.

A decision is `chosen` only when it was measured on the target's hardware (`hardware.arch`, `.accelerator`,
checked against the fingerprint of the machine that ran the trials). Measured anywhere else it is a `proxy`:
the file it would pick is named, where it was measured is recorded, and its budgets are "not verified".
Everything lands in `runs/<name>/deploy.json` (`edgekit-deploy/1`), candidates, evidence and reasons included.
"""

from __future__ import annotations

from pathlib import Path

from ..artifact_record import Status
from ..config.target import Target
from ..errors import EdgekitError
from ..fingerprint import normalized_arch
from ..runtime.registry import runtime_packages
from ..slices import MIN_SLICE_IMAGES
from .deploy_file import Candidate, DeployDocument, TargetDecision, run_relative
from .evidence import AccuracyEvidence, excess_evidence, finite_nme
from .protocol import DEFAULT_DATA

TIE = 0.02  # p50s closer than this (relative) are a tie; the smaller file wins
# Candidates whose p50 intervals overlap the fastest's are a tie too, within this band: 3 trials on a noisy machine
# give wide intervals, and an overlap alone would hand the choice to the smallest file at any cost in speed.
TIE_BAND = 0.10
NOT_MEASURED = "not-measured"  # a candidate whose accuracy was asked for and came back missing or non-finite


def candidates_from(records: list[dict], run_dir: Path) -> list[Candidate]:
    out = []
    for r in records:
        lat = r.get("latency") or {}
        acc = r.get("accuracy") or {}
        fp = r.get("fingerprint")
        status, reason = r["status"], r.get("error")
        parity = (r.get("reference") or {}).get("parity")
        if parity and not parity["passed"]:  # this runtime's outputs are not its reference's: never a choice
            status = Status.VALIDATION_FAILED.value
            reason = f"outputs differ from {r['reference']['runtime']} on the same file ({parity['rule']} failed)"
        out.append(Candidate(file=run_relative(r["artifact"], run_dir),
                             format=r["format"], precision=r["precision"], runtime=r["runtime"], status=status,
                             p50_ms=lat.get("p50"), p90_ms=lat.get("p90"), p99_ms=lat.get("p99"),
                             p50_ci95=lat.get("p50_ci95"), nme=acc.get("nme"), size_bytes=r.get("size_bytes"),
                             reason=reason, fingerprint=_measured_with(fp) if fp else None,
                             nme_per_image=acc.get("nme_per_image"), slices=acc.get("slices")))
    return out


def _measured_with(fp: dict) -> dict:
    """The parts of a fingerprint a latency depends on: CPU (model, id, flags, cores, clock, governor), GPU,
    Jetson power state and runtime versions."""
    pk = fp.get("packages") or {}
    return {"cpu": fp.get("cpu"), "gpu": [g.get("name") for g in fp.get("gpu") or []], "jetson": fp.get("jetson"),
            "os": fp.get("os"), "runtimes": {k: pk.get(k) for k in runtime_packages()}}


def _reference(cands: list[Candidate]) -> Candidate | None:
    """The float artifact every candidate is compared with, image by image: the most accurate one measured."""
    floats = [c for c in cands if c.status == Status.OK and c.precision in ("fp32", "fp16") and finite_nme(c.nme)
              and c.nme_per_image]
    return min(floats, key=lambda c: c.nme) if floats else None


def nme_limit(cands: list[Candidate], target: Target, default_increase: float) -> float | None:
    """The NME a candidate may reach, as a point figure for the table: the target's absolute `max_nme`, else the
    reference float's NME in the same bench times (1 + the allowed increase). None when nothing sets one."""
    budget = target.accuracy_budget
    if budget is not None and budget.max_nme is not None:
        return budget.max_nme
    ref = _reference(cands)
    return ref.nme * (1.0 + _increase(target, default_increase)) if ref else None


def _increase(target: Target, default_increase: float) -> float:
    budget = target.accuracy_budget
    return budget.max_nme_increase if budget is not None and budget.max_nme_increase is not None \
        else default_increase


def judge_accuracy(cands: list[Candidate], target: Target, default_increase: float, expected: bool) -> None:
    """Mark (in place) what is over the accuracy budget with evidence, or whose NME was not measured."""
    budget = target.accuracy_budget
    max_nme = budget.max_nme if budget is not None else None
    ref = _reference(cands)
    for c in cands:
        if c.status != Status.OK or not expected:
            continue
        if not finite_nme(c.nme) or not c.nme_per_image:
            c.status, c.reason = NOT_MEASURED, f"NME not measured ({c.nme!r}): cannot be judged against the budget"
            continue
        if max_nme is None and (ref is None or len(ref.nme_per_image) != len(c.nme_per_image)):
            continue  # nothing to compare with image by image: the export parity check stands
        ev: AccuracyEvidence = excess_evidence(c.nme_per_image, ref.nme_per_image if ref else None,
                                               _increase(target, default_increase), max_nme,
                                               ref.file if ref else None)
        c.evidence = ev.to_json()
        if ev.over_budget:
            c.status = "over-budget"
            c.reason = (f"NME {100 * c.nme:.2f}%: over {ev.budget} on {ev.images} images (mean excess "
                        f"{100 * ev.mean_excess:+.3f} points, 95% lower bound {100 * ev.excess_lower_bound:+.3f})")
        elif budget is not None and budget.slices and ref is not None:
            over = slices_over_budget(ref.slices or {}, c.slices or {}, budget.slices)
            if over:
                c.status, c.reason = "over-budget", "; ".join(over)


def slices_over_budget(reference: dict, candidate: dict, limits: dict[str, float]) -> list[str]:
    """The target's per-slice budgets (`accuracy_budget.slices`: slice -> relative NME increase over the reference
    float) that the candidate misses, as reasons; a slice under MIN_SLICE_IMAGES images is not judged."""
    out = []
    for name, limit in limits.items():
        ref, got = reference.get(name) or {}, candidate.get(name) or {}
        if ref.get("n", 0) < MIN_SLICE_IMAGES or not ref.get("nme") or got.get("nme") is None:
            continue
        change = got["nme"] / ref["nme"] - 1
        if change > limit:
            out.append(f"slice {name} ({ref['n']} images): NME {100 * got['nme']:.2f}% is {100 * change:+.1f}% over "
                       f"the reference float's (budget +{100 * limit:.0f}%)")
    return out


def drop_over_recipe(cands: list[Candidate], tiers: list[dict[str, str]]) -> None:
    """Mark (in place) the eligible files over each of the recipe's budgets (file -> why, most important budget
    first) as over-budget, unless that leaves none: when every file misses a budget the run's acceptance already
    fails, and the decision still names the best of what is left."""
    for over in tiers:
        eligible = [c for c in cands if c.eligible]
        if any(c.file not in over for c in eligible):
            for c in eligible:
                if c.file in over:
                    c.status, c.reason = "over-budget", over[c.file]


def choose(cands: list[Candidate]) -> tuple[Candidate | None, list[Candidate]]:
    """The fastest p50 among the eligible. A tie with it: a p50 within `TIE`, or a p50 interval that overlaps the
    fastest's with a p50 within `TIE_BAND`; the smaller file wins a tie. Returns the choice and the ties."""
    ok = sorted((c for c in cands if c.eligible), key=lambda c: c.p50_ms)
    if not ok:
        return None, []
    fastest = ok[0]
    reach = max(fastest.interval[1], fastest.p50_ms)

    def tied(c: Candidate) -> bool:
        if c.p50_ms <= fastest.p50_ms * (1.0 + TIE):
            return True
        return c.interval[0] <= reach and c.p50_ms <= fastest.p50_ms * (1.0 + TIE_BAND)

    ties = [c for c in ok if tied(c)]
    return min(ties, key=lambda c: (c.size_bytes or 0, c.p50_ms)), ties


def latency_misses(choice: Candidate, budget) -> list[str]:
    if budget is None:
        return []
    misses = []
    for q, value in (("p50", choice.p50_ms), ("p90", choice.p90_ms), ("p99", choice.p99_ms)):
        limit = getattr(budget, q, None)
        if limit is not None and value is not None and value > limit:
            misses.append(f"latency_budget_ms.{q}: {choice.file} on {choice.runtime} runs {value:.3f} ms "
                          f"(budget {limit:.3f} ms)")
    return misses


def measured_on_target(target: Target, fp: dict | None) -> tuple[bool, str]:
    """Whether the machine that ran the trials is the target's hardware, and if not, why not."""
    if fp is None:
        return False, "no fingerprint was recorded, so where it ran is unknown"
    cpu = fp.get("cpu") or {}
    arch = normalized_arch(cpu.get("arch"))
    if target.arch != "any" and arch != target.arch:
        return False, f"measured on {arch} ({cpu.get('model')}); target {target.name} is {target.arch}"
    if target.accelerator == "nvidia-gpu" and not fp.get("gpu"):
        return False, f"measured on a machine without an NVIDIA GPU; target {target.name} has one"
    if target.accelerator == "jetson" and not fp.get("jetson"):
        return False, f"measured on a machine that is not a Jetson; target {target.name} is one"
    return True, ""


def describe_machine(fp: dict | None) -> str | None:
    if not fp:
        return None
    cpu = fp.get("cpu") or {}
    gpus = ", ".join(fp.get("gpu") or [])
    return f"{cpu.get('arch')} {cpu.get('model')} ({cpu.get('cores')} cores)" + (f", {gpus}" if gpus else "")


def decide_target(run_dir: Path, target: Target, default_increase: float, progress: bool = True,
                  data: str | None = DEFAULT_DATA, ssh_config: Path | None = None,
                  remote_python: str = "python3", over_recipe: list[dict[str, str]] | None = None) -> TargetDecision:
    """`data=None`: no labels to score on here (your own model on unlabeled crops); accuracy then rests on each
    artifact's export parity check, and the choice is by latency alone. `ssh_config` and `remote_python` reach
    a target's `host:` as they do for `edgekit bench`. `over_recipe` names, budget by budget, the files over the
    recipe's own NME budgets (file -> why): each budget drops its files while another candidate keeps it."""
    from .api import BenchOptions, bench
    from .protocol import DEPLOY

    opts = BenchOptions(run=run_dir, reference=False, protocol=DEPLOY, out=run_dir / "bench" / "deploy" /
                        target.name, progress=progress, data=data or DEFAULT_DATA,
                        eval_images=0 if data is None else None, ssh_config=ssh_config,
                        remote_python=remote_python)
    budget = target.latency_budget_ms.model_dump(exclude_none=True) if target.latency_budget_ms else None
    try:
        doc, _ = bench(target, opts)
    except EdgekitError as exc:  # e.g. a GPU target on a CPU machine with no host: say so, do not fail the run
        return TargetDecision(target=target.name, status="not-measured", reason=str(exc), latency_budget_ms=budget)
    cands = candidates_from(doc["records"], run_dir)
    judge_accuracy(cands, target, default_increase, expected=data is not None)
    drop_over_recipe(cands, over_recipe or [])
    choice, ties = choose(cands)
    fp = next((r.get("fingerprint") for r in doc["records"] if r.get("fingerprint")), None)
    decision = TargetDecision(target=target.name, status="chosen" if choice else "none-in-budget", chosen=choice,
                              candidates=cands, nme_limit=nme_limit(cands, target, default_increase),
                              fingerprint=fp, host=doc.get("host", "local"), latency_budget_ms=budget,
                              measured_on=describe_machine(fp), tie_with=[c.file for c in ties if c is not choice])
    if doc.get("fleet"):
        decision.fleet = fleet_view(doc, cands, choice, run_dir)
    if choice is None:
        decision.reason = "no candidate ran within the accuracy budget"
        decision.budget_missed = [f"{target.name}: {decision.reason}"]
        return decision
    misses = [f"{target.name}: {m}" for m in latency_misses(choice, target.latency_budget_ms)]
    here, why = measured_on_target(target, fp)
    if here:
        decision.budget_missed = misses
    else:
        decision.status, decision.reason = "proxy", f"proxy: {why}; bench on the device (host:) to choose"
        decision.budget_unverified = misses or [f"{target.name}: budgets not verified (measured elsewhere)"]
    return decision


def fleet_view(doc: dict, cands: list[Candidate], choice: Candidate | None, run_dir: Path) -> dict:
    """The decision is the class median's; this says which hosts would have chosen otherwise on their own
    timings (among the same candidates within budget), and which hosts the bench named outliers."""
    per_host_p50 = {(run_relative(r["artifact"], run_dir), r["runtime"]): r.get("fleet", {}).get("p50_ms", {})
                    for r in doc["records"]}
    eligible = [c for c in cands if c.status == Status.OK]
    own = {}
    for host in doc["fleet"]["hosts"]:
        timed = [(per_host_p50.get((c.file, c.runtime), {}).get(host), c.file) for c in eligible]
        timed = [(p, f) for p, f in timed if p is not None]
        own[host] = min(timed)[1] if timed else None
    return {**doc["fleet"], "own_choice": own,
            "disagree": sorted(h for h, f in own.items() if choice is not None and f != choice.file)}


def decide(run_dir: Path, targets: list[Target], default_increase: float, progress: bool = True,
           data: str | None = DEFAULT_DATA, ssh_config: Path | None = None,
           remote_python: str = "python3", over_recipe: list[dict[str, str]] | None = None) -> DeployDocument:
    """Decide every target and write deploy.json; returns its document."""
    decisions = [decide_target(run_dir, t, default_increase, progress, data, ssh_config, remote_python, over_recipe)
                 for t in targets]
    doc = DeployDocument(run=str(run_dir), tie=TIE, targets={d.target: d for d in decisions})
    doc.write(run_dir)
    return doc


