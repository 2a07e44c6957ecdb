"""`edgekit gate`: is a candidate artifact slower or less accurate than a baseline?

Same-run A/B (default): baseline and candidate are measured in the same job, in blocks; each block is one fresh
runner process that times the baseline twice (an A/A pair that tells whether the machine is steady enough to
judge) and the candidate once, interleaved in short chunks in a random order, so a burst of machine noise lands on
every arm of the block alike. Stored baseline (`gate_stored.py`): a `benchmarks/baselines/<target>.json`
measured earlier, used only on a machine whose fingerprint matches, on the same evaluation data.
"""

from __future__ import annotations

import json
import random
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..artifact_record import read_sidecar_of, sidecar_path
from ..atomic import write_json
from ..errors import EdgekitError
from ..fingerprint import fingerprint
from ..jsonio import check_preprocess
from .decision import (
    INCONCLUSIVE,
    PASS,
    REGRESSION,
    GateRule,
    aa_check,
    accuracy_verdict,
    combine,
    paired_verdict,
    too_few_blocks,
)
from .protocol import Protocol
from .sweep import DEFAULT_PREPROCESS, Executor, eval_set

GATE_SCHEMA = "edgekit-gate/2"
TEST_NAMES = {"wilcoxon-signed-rank": "Wilcoxon signed-rank", "mann-whitney-u": "Mann-Whitney"}
# One block's measurement per process: short, since the statistics come from many blocks, not long trials.
BLOCK_PROTOCOL = Protocol(warmup_runs=10, warmup_s=0.3, runs=50, min_s=0.6, trials=1, batch_sizes=(1,),
                          eval_images=200)


@dataclass
class GateOptions:
    blocks: int = 12
    runtime: str | None = None
    threads: int = 1
    data: str = "synth:test"
    eval_images: int = 200
    input_shape: tuple[int, ...] | None = None  # None: each model's own input (dynamic dims as 1)
    overrides: dict = field(default_factory=dict)  # rule values the user gave explicitly; they beat stored ones
    seed: int = 0
    progress: object | None = None  # callable(str) for a status line per block
    remote: object | None = None  # a bench.remote.Remote: measure on that host over ssh instead of here

    def rule(self, stored: dict | None = None) -> GateRule:
        """Defaults, then a stored baseline's budgets, then what the user gave on the command line."""
        try:
            return GateRule(**{**(stored or {}), **self.overrides})
        except ValueError as exc:
            raise EdgekitError(f"bad gate rule: {exc}") from None


def resolve_artifact(spec: str, workdir: Path, role: str = "baseline") -> Path:
    """A path, or `git:REV:PATH` for the artifact as committed at a revision (extracted with `git show`) into a
    folder of its own per `role`, so a candidate and a baseline from one revision never share a file."""
    if not spec.startswith("git:"):
        p = Path(spec)
        if not p.exists():
            raise EdgekitError("artifact not found", path=p)
        return p
    try:
        _, rev, path = spec.split(":", 2)
    except ValueError:
        raise EdgekitError(f"bad baseline {spec!r}; expected git:REV:path/to/model.onnx") from None
    if not rev or rev.startswith("-") or not path:
        # A revision starting with '-' would reach git as an option.
        raise EdgekitError(f"bad baseline {spec!r}; REV must be a revision name, not an option "
                           "(expected git:REV:path/to/model.onnx)")
    proc = subprocess.run(["git", "show", "--end-of-options", f"{rev}:{path}"], capture_output=True)
    if proc.returncode != 0:
        raise EdgekitError(f"git show {rev}:{path} failed: {proc.stderr.decode(errors='replace').strip()}")
    out = workdir / role / f"{rev.replace('/', '_')}-{Path(path).name}"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(proc.stdout)
    return out


class _Measurer:
    """Runs the gate's blocks: here, or on `opts.remote` after copying the runner, the artifacts and the
    evaluation set there (`close()` removes them)."""

    def __init__(self, opts: GateOptions, eval_npz: Path | None, artifacts: tuple[Path, ...] = ()):
        self.opts, self.eval_npz, self.ex = opts, eval_npz, Executor(opts.remote)
        if opts.remote is not None:
            self.ex.start([*artifacts, *([eval_npz] if eval_npz else [])])

    def close(self) -> None:
        self.ex.close()

    def fingerprint(self, artifact: Path) -> dict:
        """The measuring machine's fingerprint: this one's, or the remote host's from one short runner call."""
        if self.opts.remote is None:
            return fingerprint()
        quick = Protocol(warmup_runs=1, warmup_s=0.0, runs=1, min_s=0.0, trials=1, batch_sizes=(1,))
        r = self.ex.trial(["--artifact", self.ex.path(artifact), "--threads", str(self.opts.threads), "--protocol",
                           json.dumps(quick.to_dict()), "--fingerprint", *self._shape()] +
                          (["--runtime", self.opts.runtime] if self.opts.runtime else []))
        if not r.get("ok"):
            raise EdgekitError(f"ssh {self.opts.remote.host}: the runner failed: {r.get('error')}")
        return r["fingerprint"]

    def _shape(self) -> list[str]:
        shape = self.opts.input_shape
        return ["--input-shape", ",".join(map(str, shape))] if shape else []

    def block(self, artifact: Path, with_accuracy: bool = False) -> dict:
        args = ["--artifact", self.ex.path(artifact), "--threads", str(self.opts.threads), "--protocol",
                json.dumps(BLOCK_PROTOCOL.to_dict()), *self._shape()]
        if self.opts.runtime:
            args += ["--runtime", self.opts.runtime]
        if with_accuracy and self.eval_npz:
            args += ["--eval", self.ex.path(self.eval_npz)]
        result = self.ex.trial(args)
        if result.get("ok"):
            result["p50"] = float(np.median(result["latency_ms"]))
        return result

    def interleaved(self, artifacts: list[Path], seed: int) -> dict:
        """One block: every artifact timed in one process, in alternating chunks (see runner.interleaved_trial)."""
        args = ["--artifact", self.ex.path(artifacts[0]), "--threads", str(self.opts.threads), "--protocol",
                json.dumps(BLOCK_PROTOCOL.to_dict()), "--seed", str(seed), *self._shape()]
        for a in artifacts[1:]:
            args += ["--interleave", self.ex.path(a)]
        if self.opts.runtime:
            args += ["--runtime", self.opts.runtime]
        result = self.ex.trial(args)
        if result.get("ok"):
            result["p50"] = [float(np.median(arm["latency_ms"])) for arm in result["arms"]]
        return result


def _candidate_blocks(m: _Measurer, candidate: Path, blocks: int, accuracy: dict) -> dict:
    """Stored baselines: each block is one process timing the candidate alone (the first also scores it)."""
    out: dict = {"B": [], "errors": {}}
    for i in range(blocks):
        want_acc = "candidate" not in accuracy
        r = m.block(candidate, with_accuracy=want_acc)
        if not r.get("ok"):
            out["errors"]["candidate"] = r.get("error", "runner failed")
            break
        if want_acc:
            accuracy["candidate"] = r.get("accuracy") or {}
        out["B"].append(r["p50"])
        if m.opts.progress:
            m.opts.progress(f"block {i + 1}/{blocks}")
    return out


def _interleaved_blocks(m: _Measurer, baseline: Path, candidate: Path, blocks: int, rng: random.Random,
                        accuracy: dict) -> dict:
    """Same-run: each block is one process timing baseline, baseline again (A/A) and candidate interleaved;
    returns per-block p50s per arm, or the first error per side."""
    out: dict = {"A1": [], "A2": [], "B": [], "errors": {}}
    for side, path in (("baseline", baseline), ("candidate", candidate)):  # accuracy, and does it run at all
        if side in accuracy:
            continue
        r = m.block(path, with_accuracy=True)
        if not r.get("ok"):
            out["errors"][side] = r.get("error", "runner failed")
        else:
            accuracy[side] = r.get("accuracy") or {}
    if out["errors"]:
        return out
    for i in range(blocks):
        order = [("A1", baseline), ("A2", baseline), ("B", candidate)]
        rng.shuffle(order)  # which arm the process loads and times first
        r = m.interleaved([p for _, p in order], seed=rng.randrange(2**31))
        if not r.get("ok"):
            if r.get("failed_arm") is None:  # the runner broke before or between arms: blame neither side
                out["errors"]["runner"] = r.get("error", "runner failed")
            else:
                arm = order[r["failed_arm"]][0]
                out["errors"]["baseline" if arm.startswith("A") else "candidate"] = r.get("error", "runner failed")
            break
        for (arm, _), p50 in zip(order, r["p50"], strict=True):
            out[arm].append(p50)
        if m.opts.progress:
            m.opts.progress(f"block {i + 1}/{blocks}")
    return out


def _not_measured(report: dict, latency: dict) -> dict:
    return {**report, "latency": latency, "verdict": INCONCLUSIVE,
            "accuracy": {"verdict": PASS, "checked": False, "reason": "not measured"}}


def _preprocess(artifact: Path, opts: GateOptions) -> dict:
    """The artifact's sidecar preprocessing; with no sidecar, the default normalisation at the model's own input
    size (or --input-shape's)."""
    record = read_sidecar_of(artifact)
    preprocess = check_preprocess(record.preprocess, sidecar_path(artifact)) if record else None
    return preprocess or {**DEFAULT_PREPROCESS, "input_size": _input_size(artifact, opts)}


def _eval_npz(opts: GateOptions, artifact: Path, workdir: Path, preprocess: dict | None = None) -> Path | None:
    """The accuracy gate's evaluation set, preprocessed for the artifact (None: latency only); `preprocess`, when
    the caller already read it, saves reading the sidecar (or loading the model) again."""
    if not opts.eval_images:
        return None
    return eval_set(opts.data, opts.eval_images, preprocess or _preprocess(artifact, opts), workdir / "eval.npz")


def _input_size(artifact: Path, opts: GateOptions) -> int:
    """H of an NCHW input: --input-shape's, else the model's own (the default size where it is dynamic)."""
    if opts.input_shape:
        return int(opts.input_shape[-1])
    from ..runtime import load

    try:
        shape = load(artifact, opts.runtime, threads=1).input_shape
    except Exception:  # noqa: BLE001 - a file that does not load fails in the runner, which names the side
        shape = []
    size = shape[-1] if len(shape) == 4 else None
    return size if isinstance(size, int) and size > 0 else int(DEFAULT_PREPROCESS["input_size"])


def same_run(baseline: Path, candidate: Path, opts: GateOptions, workdir: Path) -> dict:
    rule = opts.rule()
    report = {"mode": "same-run", "baseline": str(baseline), "candidate": str(candidate)}
    short = too_few_blocks(opts.blocks, rule, paired=True)
    if short:  # decided before measuring anything: these blocks could never show a regression
        return _not_measured(report, short)
    rng = random.Random(opts.seed)
    m = _Measurer(opts, _eval_npz(opts, candidate, workdir), (baseline, candidate))
    accuracy: dict = {}
    blocks = opts.blocks
    attempts = []
    try:
        for attempt in range(2):  # an A/A arm out of its limits gets one rerun with twice the blocks
            got = _interleaved_blocks(m, baseline, candidate, blocks, rng, accuracy)
            if "baseline" in got["errors"]:
                raise EdgekitError(f"the baseline does not run, so nothing can be compared: "
                                   f"{got['errors']['baseline']}")
            if got["errors"]:
                break
            aa = aa_check(got["A1"], got["A2"], rule)
            attempts.append({"blocks": blocks, "aa_drift": aa["drift"], "aa_spread": aa["spread"]})
            if aa["steady"] or attempt == 1:
                break
            blocks *= 2
    finally:
        m.close()
    report.update(attempts=attempts, blocks_ms={k: got[k] for k in ("A1", "A2", "B")})
    if "runner" in got["errors"]:
        report["latency"] = {"verdict": INCONCLUSIVE,
                             "reason": f"the runner failed before naming an arm: {got['errors']['runner']}"}
    elif "candidate" in got["errors"]:
        report["latency"] = {"verdict": REGRESSION, "reason": f"candidate failed to run: {got['errors']['candidate']}"}
    else:
        report["aa"] = aa
        # Paired per block: the candidate against the block's first baseline run; the second one is the A/A
        # measurement of noise (averaging the two would make the pair asymmetric under no change).
        latency = paired_verdict(got["A1"], got["B"], got["A2"], rule)
        if not aa["steady"] and latency["verdict"] == PASS:
            # Too noisy to clear the candidate; a regression shown beyond the noise still stands.
            latency.update(verdict=INCONCLUSIVE, reason=f"{'; '.join(aa['problems'])} after a rerun with {blocks} "
                                                        "blocks: the machine is too noisy to clear the candidate")
        report["latency"] = latency
    base, cand = accuracy.get("baseline") or {}, accuracy.get("candidate") or {}
    report["accuracy"] = accuracy_verdict(base.get("nme"), cand.get("nme"), rule, expected=m.eval_npz is not None,
                                          baseline_slices=base.get("slices"), candidate_slices=cand.get("slices"))
    report["verdict"] = combine(report["latency"]["verdict"], report["accuracy"]["verdict"])
    return report


def summary_markdown(report: dict) -> str:
    lines = [f"### edgekit gate: **{report['verdict'].upper()}** ({report['mode']})", "",
             f"- baseline: `{report['baseline']}`", f"- candidate: `{report['candidate']}`"]
    if report.get("reason"):
        lines.append(f"- {report['reason']}")
    lat = report.get("latency") or {}
    if "ratio" in lat:
        lines.append(f"- latency: candidate/baseline p50 ratio **{lat['ratio']:.3f}** (95% CI "
                     f"{lat['ratio_ci95'][0]:.3f}-{lat['ratio_ci95'][1]:.3f}), {TEST_NAMES[lat['test']]} p = "
                     f"{lat['p_value']:.2g}, threshold {100 * lat['threshold']:.1f}%, {lat['blocks']} blocks; baseline "
                     f"{lat['baseline_p50_ms']:.3f} ms, candidate {lat['candidate_p50_ms']:.3f} ms -> {lat['verdict']}")
        if lat.get("reason"):
            lines.append(f"  ({lat['reason']})")
    elif lat.get("reason"):
        lines.append(f"- latency: {lat['reason']} -> {lat['verdict']}")
    if report.get("aa"):
        aa = report["aa"]
        lines.append(f"- A/A check on the baseline: drift {100 * aa['drift']:.1f}% (limit "
                     f"{100 * aa['drift_limit']:.0f}%), spread {100 * aa['spread']:.1f}% (limit "
                     f"{100 * aa['spread_limit']:.0f}%)")
    acc = report.get("accuracy") or {}
    if acc.get("checked"):
        lines.append(f"- accuracy: NME {100 * acc['baseline_nme']:.3f}% -> {100 * acc['candidate_nme']:.3f}% "
                     f"({100 * acc['relative_change']:+.2f}%, budget +{100 * acc['budget']:.0f}%) -> {acc['verdict']}")
        lines += slice_lines(acc.get("slices") or {})
    elif acc:
        lines.append(f"- accuracy: not checked ({acc.get('reason')})")
    return "\n".join(lines) + "\n"


def slice_lines(slices: dict) -> list[str]:
    """The robustness slices in the summary: each failing one by name, the rest counted."""
    if not slices:
        return []
    judged = {k: v for k, v in slices.items() if v["verdict"] != "not judged"}
    lines = [f"- slices: {len(judged)} judged, {len(slices) - len(judged)} too small to judge "
             f"({', '.join(k for k in slices if k not in judged) or 'none'})"]
    for name, v in judged.items():
        if v["verdict"] == REGRESSION:
            lines.append(f"  - slice **{name}** ({v['n']} images): NME {100 * v['baseline_nme']:.3f}% -> "
                         f"{100 * v['candidate_nme']:.3f}% ({100 * v['relative_change']:+.1f}%, budget "
                         f"+{100 * v['budget']:.0f}%) -> regression")
    return lines


def write_report(report: dict, out: Path | None) -> None:
    if out:
        write_json(out, {"schema": GATE_SCHEMA, **report})


__all__ = ["GateOptions", "GateRule", "PASS", "REGRESSION", "INCONCLUSIVE", "same_run", "summary_markdown",
           "write_report", "resolve_artifact"]
