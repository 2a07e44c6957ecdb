"""The model a server runs: which artifact (deploy.json's choice for a target, or a file given), its runtime,
preprocessing and card, loaded and warmed up before the server says it is ready."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__
from ..bench.deploy_file import DeployDocument
from ..errors import EdgekitError
from ..hashing import sha256_file
from ..landmarks import STATE_NAMES
from ..predict import artifact_preprocess
from ..runtime import RuntimeUnavailable, default_runtime, load

SERVABLE = ("chosen",)
BROWSER_PRECISIONS = ("fp32", "int8")  # deploy statuses served without --allow-proxy


@dataclass
class ServedModel:
    artifact: Path
    runtime: str
    preprocess: dict
    card: dict = field(default_factory=dict)
    threads: int | None = None
    batch1_ms: float | None = None  # median batch-1 time in the warm-up's second half
    session: object = None
    ready: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def from_run(cls, run_dir: Path, target: str, allow_proxy: bool = False) -> ServedModel:
        """What the run's deploy.json chose for `target`. A proxy (measured on other hardware), or a target with
        nothing in budget, is refused unless `allow_proxy`."""
        doc = DeployDocument.read(run_dir)
        if doc is None:
            raise EdgekitError("no deploy.json: run `edgekit compress` with its deploy decision, or give --artifact",
                               path=run_dir)
        decision = doc.targets.get(target)
        if decision is None:
            raise EdgekitError(f"deploy.json has no decision for target {target!r} (it has "
                               f"{', '.join(doc.targets) or 'none'}); pass --target", path=run_dir)
        if decision.chosen is None or (decision.status not in SERVABLE and not allow_proxy):
            why = decision.reason or decision.status
            raise EdgekitError(f"target {target}: the decision is {decision.status} ({why}); serve it anyway "
                               "with --allow-proxy, or give --artifact", path=run_dir / "deploy.json")
        c = decision.chosen
        model = cls.from_artifact(run_dir / c.file, c.runtime)
        model.card.update({"target": target, "decision": decision.status, "p50_ms": c.p50_ms, "nme": c.nme,
                           "measured_on": decision.measured_on})
        return model

    @classmethod
    def from_artifact(cls, path: Path, runtime: str | None = None) -> ServedModel:
        if not path.exists():
            raise EdgekitError("artifact not found", path=path)
        record, pre = artifact_preprocess(path)
        try:
            runtime = runtime or default_runtime(path)
        except RuntimeUnavailable as exc:
            raise EdgekitError(str(exc), path=path) from None
        outputs = ((record.details if record else {}).get("io") or {}).get("outputs") or []
        points = int(np.prod(outputs[0]["shape"][1:])) // 2 if outputs and all(
            isinstance(d, int) for d in outputs[0]["shape"][1:]) else None
        card = {"id": f"{path.stem}-{sha256_file(path)[:12]}", "artifact": path.name,
                "format": record.format if record else None, "precision": record.precision if record else None,
                "runtime": runtime, "landmarks": points, "scheme": "ibug68" if points == 68 else None,
                "input_size": int(pre["input_size"]), "edgekit_version": __version__,
                "preprocess": {k: pre[k] for k in ("input_size", "mean", "std") if k in pre},
                "state_names": list(STATE_NAMES), "browser_files": [p.name for p in browser_files(path)]}
        return cls(artifact=path, runtime=runtime, preprocess=pre, card=card)

    def browser_file(self, name: str) -> Path | None:
        """An ONNX file the page may run in the browser, by name (only those the card lists: no other path)."""
        return self.artifact.parent / name if name in self.card.get("browser_files", ()) else None

    def load(self, warmup_s: float = 0.5) -> None:
        """Open the session and run it on a blank input for `warmup_s` seconds; then the server is ready."""
        try:
            self.session = load(self.artifact, self.runtime, threads=self.threads)
        except RuntimeUnavailable as exc:
            raise EdgekitError(str(exc), path=self.artifact) from None
        size = int(self.preprocess["input_size"])
        blank = np.zeros((1, 3, size, size), np.float32)
        start, times = time.perf_counter(), []
        while True:
            t = time.perf_counter()
            self.session.run(blank)
            times.append(time.perf_counter() - t)
            if t - start >= warmup_s:
                break
        self.batch1_ms = 1000 * float(np.median(times[len(times) // 2:]))
        self.ready.set()

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        """One batch through the session (one call at a time: not every runtime's session is thread-safe)."""
        with self._lock:
            return self.session.run(batch)


def browser_files(artifact: Path) -> list[Path]:
    """The FP32 and INT8 ONNX files beside the served artifact, each with its sidecar (the served one first when it
    is one): what the page's in-browser mode runs with the same preprocessing (onnxruntime-web's WASM backend has
    few FP16 kernels, so FP16 files are left out)."""
    from ..artifact_record import read_sidecar_of

    found = []
    for p in sorted(artifact.parent.glob("*.onnx")):
        record = read_sidecar_of(p)
        if record is not None and record.precision in BROWSER_PRECISIONS and record.status == "ok":
            found.append(p)
    return sorted(found, key=lambda p: p.name != artifact.name)
