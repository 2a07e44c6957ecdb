"""The bench sweep: which cells a target has, each trial in a fresh runner process, one record per cell.

A cell is (artifact x runtime) on a target. Trials run `python -m edgekit.bench.runner` locally or over SSH;
the first trial of a cell also measures throughput, accuracy and the fingerprint. One failing cell never stops
the sweep: it gets a status and its error text.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from ..artifact_record import Status, parse_status, read_sidecar_of, sidecar_path
from ..config.target import Target
from ..errors import EdgekitError
from ..formats import PRECISIONS, format_of
from ..hashing import sha256_file
from ..jsonio import check_preprocess
from ..run_manifest import MANIFEST, RunManifest, Step
from ..runtime.registry import runs, runtimes
from ..slices import ATTRIBUTE_PREFIX, stack_attributes
from .precision import precision_of
from .protocol import Protocol
from .reference import summarize as summarize_reference
from .remote import Remote
from .stats import int8_slower_warnings, latency_warnings, summarize_latency

SCHEMA = "edgekit-bench/1"
RESULT_PREFIX = "EDGEKIT-RESULT "
TRIAL_TIMEOUT_S = 900
DEFAULT_PREPROCESS = {"input_size": 112, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}


@dataclass
class Cell:
    variant: str  # e.g. "teacher", "student"
    artifact: Path
    format: str
    precision: str
    runtime: str
    status: Status = Status.OK
    error: str | None = None
    sidecar: dict = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"{self.variant} {self.precision} {self.format}/{self.runtime}"


def _cells_for(target: Target, variant: str, path: Path, sidecar: dict) -> list[Cell]:
    fmt, prec = format_of(path) or path.suffix.lstrip("."), precision_of(path, sidecar)
    cells = []
    for rt in target.concrete_runtimes():
        if not runs(rt, path):
            continue
        cell = Cell(variant, path, fmt, prec, rt, sidecar=sidecar)
        status = parse_status(sidecar.get("status", "ok"), sidecar_path(path))
        if status is Status.EXPORT_FAILED:
            cell.status, cell.error = status, sidecar.get("error", "export failed")
        elif status is Status.BUILD_ON_DEVICE:
            cell.status, cell.error = status, f"not built yet: run {sidecar.get('build_script')} on the device"
        elif status is Status.VALIDATION_FAILED:
            cell.status, cell.error = status, "parity check failed at export"
        elif not path.exists():
            cell.status, cell.error = Status.EXPORT_FAILED, f"{path.name} is missing"
        cells.append(cell)
    return cells


def latest_run(root: Path = Path("runs")) -> Path:
    manifests = sorted(root.glob("*/manifest.json"), key=lambda p: p.stat().st_mtime)
    if not manifests:
        raise EdgekitError(f"no compress runs under {root}/; run `edgekit compress` first, or pass --run / --artifact")
    return manifests[-1].parent


def discover(run_dir: Path, target: Target, reference: bool = True) -> tuple[list[Cell], dict]:
    """The cells of a compress run for `target` (the teacher as reference first), and the run's preprocessing."""
    manifest = RunManifest.read(run_dir)
    manifest_path = run_dir / MANIFEST
    steps = manifest.steps
    floats = [s.name for s in steps[1:] if _step_precision(run_dir, s) == "fp32"]  # steps[0]: the source
    final = floats[-1] if floats else "teacher"
    cells: list[Cell] = []
    teacher = steps[0] if steps else None
    if reference and teacher and teacher.artifact and final != "teacher":  # else the exports are the teacher
        cells += _cells_for(target, "teacher", run_dir / teacher.artifact, {"precision": "fp32"})
    preprocess = None
    sidecars = [a.to_json() for a in manifest.artifacts]
    # The files exported for this target; a run made for other targets offers the files this target's export
    # would have written (its formats, precisions and INT8 scheme).
    mine = [s for s in sidecars if target.name in s.get("targets", [])]
    if not mine:
        from ..export.artifacts import plan

        planned = {p.filename for p in plan([target])}
        mine = [s for s in sidecars if s.get("file") in planned]
    for sidecar in mine:
        cells += _cells_for(target, final, run_dir / "exports" / sidecar["file"], sidecar)
        preprocess = preprocess or check_preprocess(sidecar.get("preprocess"), manifest_path)
    last = next((s for s in reversed(steps) if s.name in floats), None)
    ckpt = run_dir / Path(last.artifact).parent / "model.safetensors" if last else None
    if ckpt is not None and any(runs(rt, ckpt) for rt in target.concrete_runtimes()):  # a checkpoint runtime
        cells += _cells_for(target, final, ckpt, {"precision": "fp16" if target.has_gpu else "fp32"})
    if not cells:
        raise EdgekitError(f"run {run_dir} has no artifacts for target {target.name!r} (formats "
                           f"{', '.join(target.formats)}); rerun compress with --target {target.name}")
    return cells, preprocess or DEFAULT_PREPROCESS


def _step_precision(run_dir: Path, step: Step) -> str:
    """A run-table row's precision: as recorded, or (manifests from before it was) read from its artifact."""
    if step.precision in PRECISIONS:
        return step.precision
    return precision_of(run_dir / step.artifact, {}) if step.artifact else "fp32"


def from_files(paths: list[Path], target: Target) -> tuple[list[Cell], dict]:
    cells, preprocess = [], None
    for p in paths:
        if not p.exists():
            raise EdgekitError("artifact not found", path=p)
        record = read_sidecar_of(p)
        sidecar = record.to_json() if record else {}
        preprocess = preprocess or check_preprocess(sidecar.get("preprocess"), sidecar_path(p))
        found = _cells_for(target, p.stem.split(".")[0], p, sidecar)
        if not found:
            raise EdgekitError(f"target {target.name!r} has no runtime for {p.suffix} files "
                               f"(runtimes: {', '.join(target.runtimes)})", path=p)
        cells += found
    return cells, preprocess or DEFAULT_PREPROCESS


def eval_set(data: str, n: int, preprocess: dict, out: Path) -> Path:
    """Materialise `n` labeled evaluation images, normalised for the artifacts, as an .npz (no pickle)."""
    from ..data import open_dataset
    from ..data.transforms import normalize

    ds = open_dataset(data, size=int(preprocess["input_size"]))
    n = min(n, len(ds))
    samples = [ds[i] for i in range(n)]
    if any(s.landmarks is None for s in samples):
        raise EdgekitError(f"bench accuracy needs labeled data; {data!r} has unlabeled images")
    arrays = {"x": normalize(np.stack([s.image for s in samples]), preprocess["mean"], preprocess["std"]),
              "landmarks": np.stack([s.landmarks for s in samples]).astype(np.float32)}
    contract = preprocess.get("outputs")  # your own model: how to read its outputs, and its scheme
    if contract is not None:
        points = contract["scheme"]["points"]
        if arrays["landmarks"].shape[1] != points:
            raise EdgekitError(f"--data {data!r} has {arrays['landmarks'].shape[1]}-point labels; the model's "
                               f"scheme {contract['scheme']['name']} has {points}: bench without --data, or give "
                               "data labeled in that scheme")
        arrays["contract"] = np.array(json.dumps(contract))  # a unicode array: np.load reads it without pickle
    if all(s.states is not None for s in samples):
        arrays["states"] = np.stack([s.states for s in samples]).astype(np.float32)
    arrays.update({ATTRIBUTE_PREFIX + k: v for k, v in stack_attributes([s.attributes for s in samples]).items()})
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out, **arrays)
    return out


class Executor:
    """Starts runner processes here, or on a remote host after copying the runner and the files it needs."""

    def start(self, files: list[Path]) -> None:
        if self.remote:
            self.workdir = self.remote.workdir()
            self.remote.upload_runner(self.workdir)
            unique = {str(f): f for f in files if f.exists()}
            names = [f.name for f in unique.values()]
            if len(set(names)) != len(names):  # same file name from two folders: keep them apart remotely
                for i, f in enumerate(unique.values()):
                    self.remote.run(["mkdir", "-p", f"{self.workdir}/f{i}"])
                    self.remote.put([f], f"{self.workdir}/f{i}")
                    self._sent[str(f)] = f"{self.workdir}/f{i}/{f.name}"
            else:
                self.remote.put(list(unique.values()), self.workdir)
                self._sent = {k: f"{self.workdir}/{f.name}" for k, f in unique.items()}

    def path(self, p: Path) -> str:
        return self._sent.get(str(p), str(p)) if self.remote else str(p)

    def __init__(self, remote: Remote | None = None, timeout_s: float = TRIAL_TIMEOUT_S):
        self.remote, self.workdir, self._sent, self.timeout_s = remote, None, {}, timeout_s
        if remote:
            remote.timeout = timeout_s

    def trial(self, args: list[str]) -> dict:
        """One runner process; a hang past `timeout_s` is that trial's result (`timeout: true`), not an error
        that stops the sweep."""
        try:
            if self.remote:
                proc = self.remote.run([self.remote.python, "-m", "edgekit.bench.runner", *args], cwd=self.workdir,
                                       env={"PYTHONPATH": self.workdir}, check=False)
            else:
                proc = subprocess.run([sys.executable, "-m", "edgekit.bench.runner", *args], capture_output=True,
                                      text=True, timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            return {"ok": False, "timeout": True, "error": f"trial did not finish within {self.timeout_s:g} s"}
        line = next((ln for ln in reversed(proc.stdout.splitlines()) if ln.startswith(RESULT_PREFIX)), None)
        if line is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"ok": False, "error": f"runner exited {proc.returncode} without a result: {' | '.join(tail)}"}
        return json.loads(line[len(RESULT_PREFIX):])

    def close(self) -> None:
        if self.remote and self.workdir:
            self.remote.cleanup(self.workdir)


class CellRun:
    """One cell's trials and record. Trials run back to back, or interleaved with other cells' (the protocol's
    `interleave`), which spreads a noisy machine's drift over every cell alike."""

    def __init__(self, cell: Cell, ex: Executor, protocol: Protocol, threads: int | None, xnnpack: bool,
                 eval_npz: Path | None, input_shape: list[int]):
        self.cell, self.ex, self.eval_npz, self.trials = cell, ex, eval_npz, []
        self.record = {"schema": SCHEMA, "variant": cell.variant, "format": cell.format, "precision": cell.precision,
                       "runtime": cell.runtime, "artifact": str(cell.artifact), "status": cell.status.value,
                       "error": cell.error, "threads": threads, "warnings": []}
        if cell.artifact.exists():
            self.record["size_bytes"] = cell.artifact.stat().st_size
            self.record["artifact_sha256"] = sha256_file(cell.artifact)  # the file benched, not a sidecar's claim
        self.done = cell.status is not Status.OK
        self.base = ["--artifact", ex.path(cell.artifact), "--runtime", cell.runtime, "--protocol",
                     json.dumps(protocol.to_dict()), "--input-shape", ",".join(map(str, input_shape)),
                     "--xnnpack" if xnnpack else "--no-xnnpack"] + (["--threads", str(threads)] if threads else [])

    def trial(self) -> None:
        if self.done:
            return
        extra = []
        if not self.trials:  # the first trial also measures throughput, accuracy and the fingerprint
            extra = ["--throughput", "--fingerprint"] + (["--eval", self.ex.path(self.eval_npz)] if self.eval_npz
                                                         else [])
        result = self.ex.trial(self.base + extra)
        if not result.get("ok"):  # the runtime raised, the runner died or hung: not a parity (validation) failure
            status = Status.TIMEOUT if result.get("timeout") else Status.RUN_FAILED
            self.record.update(status=status.value, error=result.get("error"),
                               traceback=result.get("traceback"))
            self.done = True
            return
        self.trials.append(result)

    def finish(self) -> dict:
        record, trials = self.record, self.trials
        if record["status"] != Status.OK or not trials:
            return record
        first = trials[0]
        record["latency"] = summarize_latency([t["latency_ms"] for t in trials])
        record["latency_samples_ms"] = [t["latency_ms"] for t in trials]
        record["init_ms"] = float(np.median([t["init_ms"] for t in trials]))
        record["first_inference_ms"] = float(np.median([t["first_inference_ms"] for t in trials]))
        record["peak_rss_bytes"] = max(t["peak_rss_bytes"] for t in trials)
        model_mem = [t["memory"]["model_rss_bytes"] for t in trials if t.get("memory", {}).get("model_rss_bytes")
                     is not None]
        record["model_rss_bytes"] = int(np.median(model_mem)) if model_mem else None
        record["throughput"] = first.get("throughput", {})
        record["accuracy"] = first.get("accuracy")
        record["fingerprint"] = first.get("fingerprint")
        if first.get("runtime_info"):
            record["runtime_info"] = first["runtime_info"]
        record["warnings"] = latency_warnings(record["latency"])
        reference = summarize_reference(trials, self.cell.precision,
                                        (self.cell.sidecar.get("parity") or {}).get("nme_budget"))
        if reference:
            record["reference"] = reference
            if "parity" in reference and not reference["parity"]["passed"]:
                record["warnings"].append(f"outputs differ from {reference['runtime']} beyond the parity budget "
                                          f"({reference['parity']['rule']})")
        return record


def sweep(cells: list[Cell], target: Target, protocol: Protocol, eval_npz: Path | None, input_shape: list[int],
          remote: Remote | None = None, threads: int | None = None, progress=None,
          trial_timeout_s: float = TRIAL_TIMEOUT_S) -> dict:
    """Bench every cell; returns the bench document (meta + one record per cell)."""
    threads = threads if threads is not None else target.threads
    ex = Executor(remote, trial_timeout_s)
    started = time.perf_counter()
    records = []
    try:
        ex.start([c.artifact for c in cells if c.status is Status.OK] + ([eval_npz] if eval_npz else []))
        runs = [CellRun(c, ex, protocol, threads, target.xnnpack, eval_npz, input_shape) for c in cells]
        # Interleaved: trial 1 of every cell, then trial 2, ...; else each cell's trials back to back.
        order = ([r for _ in range(protocol.trials) for r in runs] if protocol.interleave
                 else [r for r in runs for _ in range(protocol.trials)])
        for run in order:
            if progress:
                progress.describe(run.cell.label)
            run.trial()
            if progress:
                progress.advance()
        records = [r.finish() for r in runs]
    finally:
        ex.close()
    for r in records:
        r["target"] = target.name
        r["host"] = remote.host if remote else "local"
        r["protocol"] = protocol.to_dict()
    int8_slower_warnings(records)
    return {"schema": SCHEMA, "target": target.name, "host": remote.host if remote else "local",
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "wall_s": round(time.perf_counter() - started, 1), "protocol": protocol.to_dict(),
            "runtimes": {k: v.description for k, v in runtimes().items()}, "records": records}
