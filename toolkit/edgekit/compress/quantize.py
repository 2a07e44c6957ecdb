"""INT8 stage, post-training: a QDQ ONNX through onnxruntime.quantization, with accuracy-aware float fallback.

Calibration runs once (ORT's calibration cache); the sensitivity pass then quantizes one layer at a time,
ranks layers by how much that alone raises NME, and the fallback keeps the worst ones in float until INT8 is
within the recipe's NME budget.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx
from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.registry import QDQRegistry, QLinearOpsRegistry
from onnxruntime.quantization.shape_inference import quant_pre_process
from rich.progress import Progress

from ..hashing import sha256_file, sha256_json
from .context import StageContext

if TYPE_CHECKING:  # annotations only: the stage file imports this module to run it
    from .stages.quantize import QuantizeConfig

# Every op type ORT's QDQ quantizer may wrap. Data-movement ops (Flatten, Reshape, ...) count too: quantizing
# them puts Q/DQ on the tensors they carry, so a float Gemm after a quantized Flatten still sees int8 noise.
# ORT's default op list for static quantization is the union of both registries (Sigmoid and
# GlobalAveragePool come from the QLinear one).
QUANTIZABLE_OPS = tuple(sorted(set(QDQRegistry) | set(QLinearOpsRegistry)))
MIN_CALIBRATION_IMAGES = 100
log = logging.getLogger("edgekit")

METHODS = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
           "percentile": CalibrationMethod.Percentile}


@dataclass(frozen=True)
class QuantScheme:
    """How tensors map to int8. TensorRT needs symmetric activations (zero-point 0); x86 CPUs without VNNI
    want 7-bit weights (reduce_range) to avoid saturating 16-bit accumulators."""

    symmetric_activations: bool = False
    reduce_range: bool = False

    @property
    def tag(self) -> str:
        return "sym" if self.symmetric_activations else "asym"


class ArrayReader(CalibrationDataReader):
    """Feeds calibration batches of equal size: ORT's histogram calibrators stack per-batch outputs, so a short
    last batch would break them. The batch is the largest size <= max_batch that divides the image count."""

    def __init__(self, input_name: str, images: np.ndarray, max_batch: int = 16):
        self.batch_size = max(d for d in range(1, max_batch + 1) if len(images) % d == 0)
        self.input_name, self.images, self.i = input_name, images, 0

    def get_next(self):
        if self.i >= len(self.images):
            return None
        batch = self.images[self.i:self.i + self.batch_size]
        self.i += self.batch_size
        return {self.input_name: batch}

    def rewind(self):
        self.i = 0


def quantizable_nodes(path: Path) -> list[str]:
    return [n.name for n in onnx.load(str(path)).graph.node if n.op_type in QUANTIZABLE_OPS]


def weight_counts(path: Path) -> dict[str, int]:
    """Node name -> number of values in its constant inputs (weights and biases)."""
    graph = onnx.load(str(path)).graph
    sizes = {t.name: int(np.prod(t.dims)) for t in graph.initializer}
    return {n.name: sum(sizes.get(i, 0) for i in n.input) for n in graph.node}


class Int8Builder:
    """Quantizes one preprocessed float ONNX model repeatedly with different float-layer sets."""

    def __init__(self, fp32_path: Path, work_dir: Path, cfg: QuantizeConfig, scheme: QuantScheme,
                 calibration: np.ndarray):
        self.cfg, self.scheme, self.work = cfg, scheme, work_dir
        self.pre = work_dir / "model.pre.onnx"
        quant_pre_process(str(fp32_path), str(self.pre), skip_symbolic_shape=True)
        # ORT reuses a calibration cache file without checking what produced it, so the file name carries a hash
        # of everything the ranges depend on: the model, the images and the calibration settings.
        ident = sha256_json([sha256_file(self.pre), hashlib.sha256(np.ascontiguousarray(calibration)).hexdigest(),
                             cfg.calibration.model_dump(), scheme.tag, scheme.reduce_range])[:16]
        self.cache = work_dir / f"calibration.{cfg.calibration.method}.{ident}.json"
        for stale in work_dir.glob("calibration.*.json"):
            if stale != self.cache:
                stale.unlink()
        self.reader = ArrayReader("image", calibration)
        self.nodes = quantizable_nodes(self.pre)
        self.input_convs = input_convs(self.pre)

    def build(self, out: Path, exclude: list[str] | None = None, only: list[str] | None = None,
              fmt: QuantFormat = QuantFormat.QDQ) -> Path:
        act = QuantType.QInt8 if self.scheme.symmetric_activations else QuantType.QUInt8
        extra = {"ActivationSymmetric": self.scheme.symmetric_activations, "WeightSymmetric": True}
        if self.cfg.calibration.method == "percentile":
            extra["CalibPercentile"] = self.cfg.calibration.percentile
        self.reader.rewind()
        # ORT's calibrators print progress to stdout; keep the CLI's output to our own table and bars.
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            quantize_static(str(self.pre), str(out), self.reader, quant_format=fmt,
                            per_channel=self.cfg.per_channel, reduce_range=self.scheme.reduce_range,
                            activation_type=act, weight_type=QuantType.QInt8, nodes_to_quantize=only,
                            nodes_to_exclude=exclude or [], calibrate_method=METHODS[self.cfg.calibration.method],
                            extra_options=extra, calibration_cache_path=str(self.cache))
        return out


def _nme(ctx: StageContext, path: Path) -> float:
    return ctx.scoring.score_onnx(path, ctx.data.val)["nme"]


def calibration_images(ctx: StageContext, n: int) -> np.ndarray:
    x = ctx.data.arrays(ctx.data.calibration, calibration=True)["x"]
    if len(x) < n:
        log.warning("calibration set %s has %d images, fewer than the %d asked for", ctx.data.calibration, len(x), n)
    return x[:n]


@dataclass
class QatReport:
    """What quantization-aware training adds: the tuned float model later schemes quantize, and its history."""

    fp32_onnx: Path
    val_nme_fake_quant: float | None
    best_epoch: int
    history: list[dict]

    def to_json(self) -> dict:
        return {"fp32_onnx": self.fp32_onnx.name, "val_nme_fake_quant": self.val_nme_fake_quant,
                "best_epoch": self.best_epoch, "history": self.history}


@dataclass
class Int8Report:
    """One INT8 model's figures: what the quantize stage puts in its run-table row (`to_json`) and per scheme."""

    scheme: dict
    val_nme_fp32: float
    val_nme_int8: float
    nme_increase: float | None  # None against the original itself (your own model, unlabeled: float NME is 0)
    budget: float | None
    within_budget: bool
    float_layers: list[str]
    sensitivity: list[dict]
    quantized_layers: int
    ort_format: dict | None
    warnings: list[str] = field(default_factory=list)
    qat: QatReport | None = None

    def to_json(self) -> dict:
        """The manifest's row details (warnings travel apart, in the step's own list)."""
        out = {k: getattr(self, k) for k in ("scheme", "val_nme_fp32", "val_nme_int8", "nme_increase", "budget",
                                              "within_budget", "float_layers", "sensitivity", "quantized_layers",
                                              "ort_format")}
        return {**out, "qat": self.qat.to_json()} if self.qat else out


def run_ptq(fp32_path: Path, cfg: QuantizeConfig, scheme: QuantScheme, ctx: StageContext,
            out_dir: Path) -> tuple[Path, Int8Report]:
    """Quantize `fp32_path`; returns the INT8 model's path and its figures."""
    images = calibration_images(ctx, cfg.calibration.images)
    warnings_ = []
    if len(images) < MIN_CALIBRATION_IMAGES:
        warnings_.append(f"calibration uses {len(images)} images (< {MIN_CALIBRATION_IMAGES}): ranges may be poor")
    builder = Int8Builder(fp32_path, out_dir, cfg, scheme, images)
    out = out_dir / f"model.int8.{scheme.tag}.onnx"
    nme_fp32 = _nme(ctx, fp32_path)
    builder.build(out)
    nme_int8 = _nme(ctx, out)
    budget = ctx.scoring.nme_budget(nme_fp32, cfg.fallback.max_nme_increase) if cfg.fallback else None
    float_layers: list[str] = []
    sensitivity: list[dict] = []
    if budget is not None and nme_int8 > budget:
        sensitivity = _sensitivity(builder, ctx, nme_fp32, out_dir)
        limit, counts = cfg.fallback.max_float_params, weight_counts(builder.pre)
        ranked = [s["node"] for s in sensitivity if limit is None or counts.get(s["node"], 0) <= limit]
        trial = out_dir / "model.fallback.onnx"
        for k in range(1, min(cfg.fallback.max_float_layers, len(ranked)) + 1):
            builder.build(trial, exclude=ranked[:k])
            nme_int8 = _nme(ctx, trial)
            float_layers = ranked[:k]
            if nme_int8 <= budget:
                break
        trial.replace(out)
    ort_format = None
    if not scheme.symmetric_activations:  # the ONNX Runtime CPU scheme; TensorRT's symmetric one needs QDQ
        ort_format = choose_ort_format(builder, out, float_layers, nme_int8, budget, cfg.ort_format, ctx, out_dir)
        nme_int8 = ort_format["val_nme"][ort_format["chosen"]]
        float_layers = float_layers + ort_format["float_input"]
    for tmp in (builder.pre,):
        tmp.unlink(missing_ok=True)
    return out, Int8Report(
        scheme={"symmetric_activations": scheme.symmetric_activations, "reduce_range": scheme.reduce_range,
                "per_channel": cfg.per_channel, "calibration": cfg.calibration.model_dump(),
                "calibration_images": int(len(images))},
        val_nme_fp32=nme_fp32, val_nme_int8=nme_int8,
        nme_increase=nme_int8 / nme_fp32 - 1.0 if nme_fp32 > 0 else None,
        budget=budget, within_budget=budget is None or nme_int8 <= budget, float_layers=float_layers,
        sensitivity=sensitivity, quantized_layers=len(builder.nodes) - len(float_layers), ort_format=ort_format,
        warnings=warnings_)


FORMAT_MARGIN = 0.03  # an alternative must measure this much faster than QDQ (the portable form) to replace it
FLOAT_INPUT = "qoperator-float-input"


def input_convs(path: Path, max_channels: int = 4) -> list[str]:
    """Convs that read the image itself (<= `max_channels` channels). ONNX Runtime's int8 convolution packs input
    channels in blocks, so a 3-channel stem wastes most of each block: in float it can run faster (measured on
    the early-stride student: 0.215 -> 0.194 ms in QOperator form; no gain in QDQ form, whose float stem still
    pays a DequantizeLinear of the image)."""
    graph = onnx.load(str(path)).graph
    inputs = {i.name for i in graph.input} - {t.name for t in graph.initializer}
    dims = {t.name: list(t.dims) for t in graph.initializer}
    return [n.name for n in graph.node if n.op_type == "Conv" and n.input[0] in inputs
            and len(dims.get(n.input[1], [])) == 4 and dims[n.input[1]][1] <= max_channels]


def choose_ort_format(builder: Int8Builder, qdq: Path, float_layers: list[str], nme_qdq: float,
                      budget: float | None, wanted: str, ctx: StageContext, out_dir: Path) -> dict:
    """Keep the QDQ model, or replace it by the same quantization in QOperator form (with the image's convs in
    float for `qoperator-float-input`) when that is asked for, or (auto) by the fastest of those two forms, timed
    side by side here, when it beats QDQ by the margin and keeps the NME budget. `float_input` names the convs
    the choice keeps float on top of the fallback's."""
    if wanted == "qdq":
        return {"chosen": "qdq", "val_nme": {"qdq": nme_qdq}, "p50_ms": None, "float_input": []}
    files = {"qoperator": out_dir / "model.qop.onnx"}
    builder.build(files["qoperator"], exclude=float_layers, fmt=QuantFormat.QOperator)
    stem = [n for n in builder.input_convs if n not in float_layers] if wanted in ("auto", FLOAT_INPUT) else []
    if stem:
        files[FLOAT_INPUT] = out_dir / "model.qop-float-input.onnx"
        builder.build(files[FLOAT_INPUT], exclude=float_layers + stem, fmt=QuantFormat.QOperator)
    nme = {"qdq": nme_qdq, **{k: _nme(ctx, f) for k, f in files.items()}}
    p50 = side_by_side_ms({"qdq": qdq, **files}, ctx.input_shape) if wanted == "auto" else None
    keep = wanted if wanted in files else "qoperator"  # forced (no image conv to keep float: plain QOperator)
    if wanted == "auto":
        fits = [k for k in files if (budget is None or nme[k] <= budget) and p50[k] < p50["qdq"] * (1 - FORMAT_MARGIN)]
        keep = min(fits, key=lambda k: p50[k], default="qdq")
    for k, f in files.items():
        if k == keep:
            f.replace(qdq)
        else:
            f.unlink(missing_ok=True)
    return {"chosen": keep, "val_nme": nme, "p50_ms": p50, "float_input": stem if keep == FLOAT_INPUT else []}


def side_by_side_ms(paths: dict[str, Path], input_shape: tuple[int, ...], rounds: int = 5) -> dict[str, float]:
    """Median p50 per file in ONNX Runtime (1 thread), rounds alternating between the files."""
    from ..runtime import load
    from ..runtime.timing import alternating_median_ms

    sample = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
    sessions = {k: load(p, "onnxruntime", threads=1) for k, p in paths.items()}
    p50 = alternating_median_ms({k: (lambda s=s: s.run(sample)) for k, s in sessions.items()}, rounds=rounds)
    return {k: round(v, 4) for k, v in p50.items()}


def _sensitivity(builder: Int8Builder, ctx: StageContext, nme_fp32: float, out_dir: Path) -> list[dict]:
    """NME rise when each layer alone is quantized, worst first."""
    probe = out_dir / "model.probe.onnx"
    rows = []
    with Progress(disable=not ctx.progress, transient=True) as bar:
        task = bar.add_task("INT8 sensitivity", total=len(builder.nodes))
        for node in builder.nodes:
            builder.build(probe, only=[node])
            rows.append({"node": node, "nme_increase": _nme(ctx, probe) / max(nme_fp32, 1e-9) - 1.0})
            bar.advance(task)
    probe.unlink(missing_ok=True)
    return sorted(rows, key=lambda r: -r["nme_increase"])
