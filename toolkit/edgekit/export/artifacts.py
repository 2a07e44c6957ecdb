"""The export phase: what each target needs, built once each, with a sidecar and a parity check.

Every artifact gets `<file>.json` beside it: format, precision, I/O names, shapes and dtypes, int8 quantization
parameters, the parity result against the PyTorch model, hashes, and which targets use it. One failed export is
marked failed and the others carry on.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import onnx
from torch import nn

from .. import __version__
from ..artifact_record import ArtifactRecord, Status, read_sidecar, sidecar_path, write_sidecar
from ..atomic import write_bytes
from ..config.target import Target
from ..convert.fp16 import onnx_to_fp16
from ..errors import EdgekitError
from ..fingerprint import keyed_versions
from ..formats import FORMATS, format_of
from ..hashing import code_hash, sha256_file, sha256_json
from ..outputs import OutputContract
from ..runtime import load as load_runtime
from .parity import parity
from .tensorrt import EngineSpec, build_engine, qdq_zero_points_are_zero, tensorrt_available, write_build_script
from .tflite import export_tflite, io_details
from .tflite_int8 import choose_float_modules

PARITY_SAMPLES = 64
FALLBACK_SELECTION_IMAGES = 128


@dataclass(frozen=True)
class Planned:
    format: str  # onnx | tflite | tensorrt
    precision: str  # fp32 | fp16 | int8
    scheme: str | None = None  # INT8 ONNX and engines: the QDQ scheme (asym for ONNX Runtime CPU, sym for TensorRT)

    @property
    def filename(self) -> str:
        name = FORMATS[self.format].filename(self.precision)
        if self.format == "onnx" and self.scheme == "sym":  # model.int8.onnx is the CPU (asymmetric) one
            name = name.replace(".int8.", ".int8.sym.")
        return name


def plan(targets: list[Target]) -> dict[Planned, list[str]]:
    """Artifact -> names of the targets that need it (each artifact is built once)."""
    out: dict[Planned, list[str]] = {}
    for t in targets:
        for fmt in t.formats:
            for prec in t.precision:
                if not t.can_run(fmt, prec):
                    continue
                scheme = t.int8_scheme if prec == "int8" and fmt in ("onnx", "tensorrt") else None
                out.setdefault(Planned(fmt, prec, scheme), []).append(t.name)
    return out


@dataclass
class ExportSources:
    float_model: nn.Module  # the final PyTorch model (what parity compares against)
    fp32_onnx: Path
    int8_onnx: dict[str, Path]  # the quantize stage's QDQ models by scheme ({} if the recipe did not quantize)
    input_shape: tuple[int, ...]
    calibration: np.ndarray  # normalised calibration inputs (TFLite INT8 representative data)
    samples: np.ndarray  # normalised evaluation inputs for parity
    labels: np.ndarray | None
    key: str  # identity of the sources: the last stage's cache key
    preprocess: dict = field(default_factory=dict)  # input_size, mean, std: how a runner feeds the artifact
    output_names: list[str] = field(default_factory=lambda: ["landmarks", "states"])
    nme_budget: float | None = None  # relative NME rise an FP16/INT8 artifact may show over the float model
    max_float_layers: int = 20  # most layers an INT8 TFLite model may keep in float to meet nme_budget
    max_float_params: int | None = None  # layers with more weights stay INT8 (file size)
    selection: tuple[np.ndarray, np.ndarray] | None = None  # labeled (inputs, landmarks) that choose those layers
    contract: OutputContract | None = None  # how to read the outputs (None: edgekit's landmarks, states)
    absolute_budget: bool = False  # labels are the original model's own outputs: nme_budget is absolute


def _onnx_io(path: Path) -> dict:
    g = onnx.load(str(path)).graph

    def describe(v) -> dict:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}

    return {"inputs": [describe(v) for v in g.input], "outputs": [describe(v) for v in g.output]}


def _build(p: Planned, src: ExportSources, out_dir: Path, targets: list[Target],
           progress: bool = False) -> tuple[Path, dict]:
    """Write one artifact; returns (path, extra sidecar fields)."""
    path = out_dir / p.filename
    if p.format == "onnx":
        if p.precision == "fp32":
            write_bytes(path, src.fp32_onnx.read_bytes())
        elif p.precision == "int8":
            scheme, source = _int8_source(src, p.scheme)
            write_bytes(path, source.read_bytes())
        else:
            onnx_to_fp16(src.fp32_onnx, path)
        extra = {"io": _onnx_io(path)}
        if p.precision == "int8":
            extra["int8_scheme"] = scheme  # what the file is (a recipe may force one scheme for all)
        if p.precision == "int8" and any(t.uses_tensorrt for t in targets):
            ok, bad = qdq_zero_points_are_zero(path)
            extra["tensorrt_qdq_symmetric"] = ok
            if not ok:
                raise RuntimeError(f"Q/DQ zero-points must be 0 for TensorRT; non-zero at {bad[:3]}")
        return path, extra
    if p.format == "tflite":
        extra = {}
        float_modules: list[str] = []
        if p.precision == "int8" and src.selection is not None and src.nme_budget is not None:
            choice = choose_float_modules(src.float_model, src.input_shape, src.calibration, *src.selection,
                                          src.nme_budget, src.max_float_layers, progress=progress,
                                          max_params=src.max_float_params, contract=src.contract,
                                          absolute=src.absolute_budget)
            float_modules, extra["fallback"] = choice.float_modules, choice.as_dict()
        export_tflite(src.float_model, path, src.input_shape, p.precision, calibration=src.calibration,
                      float_modules=float_modules)
        return path, {"io": io_details(path), **extra}
    return _tensorrt(p, src, out_dir, targets)


def _int8_source(src: ExportSources, scheme: str | None) -> tuple[str, Path]:
    """The QDQ model of `scheme`; a recipe that forced one scheme (symmetric_activations: true|false) made only
    that one, and it serves every target."""
    if not src.int8_onnx:
        raise RuntimeError("the recipe has no quantize stage, so there is no INT8 ONNX model")
    if scheme in src.int8_onnx:
        return scheme, src.int8_onnx[scheme]
    if len(src.int8_onnx) == 1:
        return next(iter(src.int8_onnx.items()))
    raise RuntimeError(f"the quantize stage made no {scheme} INT8 model (it made {', '.join(src.int8_onnx)})")


def _tensorrt(p: Planned, src: ExportSources, out_dir: Path, targets: list[Target]) -> tuple[Path, dict]:
    onnx_src = _int8_source(src, p.scheme)[1] if p.precision == "int8" else src.fp32_onnx
    onnx_copy = out_dir / f"engine-input.{p.precision}.onnx"
    write_bytes(onnx_copy, onnx_src.read_bytes())
    users = [t for t in targets if "tensorrt" in t.formats]
    dla = next((t.dla_core for t in users if t.dla_core is not None), None)
    spec = EngineSpec(("int8", "fp16") if p.precision == "int8" else ("fp16",), input_chw=tuple(src.input_shape[1:]),
                      dla_core=dla)
    script = write_build_script(onnx_copy, p.filename, spec, out_dir / f"build_engine.{p.precision}.sh")
    on_device = all(t.build == "on-device" for t in users)
    usable, why = tensorrt_available()
    if on_device or not usable:
        reason = "engines are built on the device that runs them" if on_device else why
        raise _Deferred(script, reason)
    engine = build_engine(onnx_copy, out_dir / p.filename, spec, out_dir / "timing.cache")
    return engine, {"build_script": script.name}


class _Deferred(Exception):
    """Not an error: the engine is to be built on the device with the script we wrote."""

    def __init__(self, script: Path, reason: str):
        super().__init__(reason)
        self.script, self.reason = script, reason


def _file_matches(path: Path, record) -> bool:
    """Reuse only the very file the sidecar describes: present, and with the sha256 it recorded (a deferred
    TensorRT engine has no file yet and no hash)."""
    if record.sha256 is None:
        return record.status is Status.BUILD_ON_DEVICE
    return path.exists() and sha256_file(path) == record.sha256


def export_all(src: ExportSources, targets: list[Target], out_dir: Path, progress: bool = True) -> list[dict]:
    """Build every planned artifact (skipping ones already built from the same sources); return sidecars."""
    out_dir.mkdir(parents=True, exist_ok=True)
    records = []
    for p, users in plan(targets).items():
        side = sidecar_path(out_dir / p.filename)
        key = sha256_json([src.key, p.format, p.precision, p.scheme, users, __version__, code_hash(), src.nme_budget,
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
                records.append({**old.to_json(), "cached": True})
                continue
        # The sidecar goes before the build starts: a kill mid-build then leaves a file with no sidecar (rebuilt
        # next time), never an old sidecar whose key vouches for a half-written or different file.
        side.unlink(missing_ok=True)
        record = ArtifactRecord(format=p.format, precision=p.precision, file=p.filename, key=key, targets=users,
                                edgekit_version=__version__, preprocess=src.preprocess)
        try:
            path, record.details = _build(p, src, out_dir, [t for t in targets if t.name in users], progress)
            record.size_bytes, record.sha256 = path.stat().st_size, sha256_file(path)
            if format_of(path) != "tensorrt":  # an engine is checked where it runs
                session = load_runtime(path, threads=None)  # the file type picks ORT or LiteRT
                record.parity = parity(session.run, src.float_model, src.samples, p.precision, src.labels,
                                       src.nme_budget, src.contract, src.absolute_budget)
                if not record.parity["passed"]:
                    record.status = Status.VALIDATION_FAILED
        except _Deferred as d:
            record.status = Status.BUILD_ON_DEVICE
            record.details = {"build_script": d.script.name, "reason": d.reason,
                              "command": d.script.read_text().strip().splitlines()[-1]}
        except Exception as exc:  # noqa: BLE001 - one artifact's failure must not stop the others
            record.status = Status.EXPORT_FAILED
            record.error, record.traceback = f"{exc.__class__.__name__}: {exc}", traceback.format_exc(limit=5)
        write_sidecar(side, record)
        records.append(record.to_json())
    return records
