"""The export phase: what each target needs, built once each, with a sidecar and a parity check.

Every artifact gets `<file>.json` beside it: format, precision, I/O names, shapes and dtypes, int8 quantization
parameters, the parity result against the PyTorch model, hashes, and which targets use it. One failed export is
marked failed and the others carry on.
"""

from __future__ import annotations

import traceback
from pathlib import Path

from .. import __version__
from ..artifact_record import ArtifactRecord, Status, read_sidecar, sidecar_path, write_sidecar
from ..config.target import Target
from ..errors import EdgekitError
from ..fingerprint import keyed_versions
from ..formats import format_named
from ..hashing import code_hash, sha256_file, sha256_json
from ..runtime import load as load_runtime
from .parity import parity
from .sources import BuildOnDevice, ExportSources, Planned

# Parity judges a 1% NME budget: 64 images were too few to trust such a verdict (docs/NOTES.md, session 7).
PARITY_SAMPLES = 256
FALLBACK_SELECTION_IMAGES = 128


def plan(targets: list[Target]) -> dict[Planned, list[str]]:
    """Artifact -> names of the targets that need it (each artifact is built once)."""
    out: dict[Planned, list[str]] = {}
    for t in targets:
        for name in t.formats:
            fmt = format_named(name)
            for prec in t.precision:
                if t.can_run(name, prec):
                    out.setdefault(Planned(name, prec, fmt.variant(t, prec)), []).append(t.name)
    return out


def _file_matches(path: Path, record) -> bool:
    """Reuse only the very file the sidecar describes: present, and with the sha256 it recorded (a deferred
    TensorRT engine has no file yet and no hash)."""
    if record.sha256 is None:
        return record.status is Status.BUILD_ON_DEVICE
    return path.exists() and sha256_file(path) == record.sha256


def file_accuracy(metrics: dict) -> dict:
    """What a sidecar keeps of a file's metrics: NME and image count on the evaluation split, NME per real set."""
    return {k: metrics[k] for k in ("nme", "n", "real_nme") if k in metrics}


def export_all(src: ExportSources, targets: list[Target], out_dir: Path,
               progress: bool = True) -> list[ArtifactRecord]:
    """Build every planned artifact (skipping ones already built from the same sources); return their records."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for p, users in plan(targets).items():
        side = sidecar_path(out_dir / p.filename)
        key = sha256_json([src.key, p.format, p.precision, p.variant, users, __version__, code_hash(), src.nme_budget,
                          src.max_float_layers, src.max_float_params, keyed_versions()])
        if side.exists():
            try:
                old = read_sidecar(side)
            except EdgekitError:
                old = None  # unreadable (hand-edited?): built again
            if old is not None and old.key == key and old.status is not Status.EXPORT_FAILED \
                    and _file_matches(out_dir / p.filename, old):
                old.preprocess = src.preprocess  # sidecars from before this field existed get it too
                write_sidecar(side, old)
                old.cached = True
                records.append(old)
                continue
        # The sidecar goes before the build starts: a kill mid-build then leaves a file with no sidecar (rebuilt
        # next time), never an old sidecar whose key vouches for a half-written or different file.
        side.unlink(missing_ok=True)
        record = ArtifactRecord(format=p.format, precision=p.precision, file=p.filename, key=key, targets=users,
                                edgekit_version=__version__, preprocess=src.preprocess)
        try:
            fmt = format_named(p.format)
            path, record.details = fmt.build(p, src, out_dir, [t for t in targets if t.name in users], progress)
            record.size_bytes, record.sha256 = path.stat().st_size, sha256_file(path)
            if fmt.checked_here:
                session = load_runtime(path, threads=None)  # the file type picks its CPU runtime
                record.parity = parity(session.run, src.float_model, src.samples, p.precision, src.labels,
                                       src.nme_budget, src.contract, src.absolute_budget)
                if not record.parity["passed"]:
                    record.status = Status.VALIDATION_FAILED
                if src.evaluate is not None:
                    record.accuracy = file_accuracy(src.evaluate(session.run))
        except BuildOnDevice as d:
            record.status = Status.BUILD_ON_DEVICE
            record.details = {"build_script": d.script.name, "reason": d.reason,
                              "command": d.script.read_text().strip().splitlines()[-1]}
        except Exception as exc:  # noqa: BLE001 - one artifact's failure must not stop the others
            record.status = Status.EXPORT_FAILED
            record.error, record.traceback = f"{exc.__class__.__name__}: {exc}", traceback.format_exc(limit=5)
        write_sidecar(side, record)
        records.append(record)
    return records
