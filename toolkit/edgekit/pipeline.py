"""Run a recipe: teacher -> stages -> artifacts, in `runs/<name>/`, resumable.

Each stage writes into its own folder and, last of all, `stage.json` holding its cache key and report. A rerun
skips a stage whose key (input hash + stage config + data + code version) matches, so Ctrl-C or a crash loses
at most the stage in flight. Every file is written atomically.
"""

from __future__ import annotations

import copy
import json
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .artifact_record import Status
from .atomic import write_json
from .compress.byom import ByomContext, ByomSpec
from .compress.context import StageContext
from .compress.distill import run_distill
from .compress.fp16 import run_fp16
from .compress.prune import run_prune
from .compress.qat import run_qat
from .compress.quantize import QuantScheme, run_ptq
from .config.recipe import Recipe
from .config.target import Target
from .data.datasets import data_fingerprint
from .errors import EdgekitError
from .export.artifacts import FALLBACK_SELECTION_IMAGES, PARITY_SAMPLES, ExportSources, export_all
from .convert.onnx import export_onnx
from .fingerprint import package_versions
from .hashing import code_hash, sha256_file, sha256_json
from .models.byom import load_byom
from .models.checkpoint import CheckpointMeta, load_checkpoint, resolve, save_checkpoint
from .models.registry import count_macs_params
from .thirdparty_log import LOG_NAME

MANIFEST = "manifest.json"
EXPORT_CALIBRATION_IMAGES = 200
BYOM_STAGES = ("quantize", "fp16")
STAGE_FILE = "stage.json"


@dataclass
class Step:
    """One row of the result table: a model state after a stage."""

    name: str
    key: str
    params: int
    macs: int
    size_bytes: int
    metrics: dict
    artifact: str
    wall_s: float = 0.0
    cached: bool = False
    extra: dict = field(default_factory=dict)


@dataclass
class CompressRun:
    recipe: Recipe
    run_dir: Path
    targets: list[Target] = field(default_factory=list)
    teacher: str | None = None  # overrides the recipe's teacher
    progress: bool = True
    seed: int = 0
    workers: int = 1
    recipe_path: str | None = None
    byom: ByomSpec | None = None  # a user's model instead of an edgekit checkpoint


def quant_scheme(targets: list[Target], cfg) -> QuantScheme:
    sym = cfg.symmetric_activations
    if sym == "auto":
        sym = any(t.uses_tensorrt for t in targets)
    return QuantScheme(symmetric_activations=bool(sym), reduce_range=cfg.reduce_range)


def _onnx_for(model: nn.Module, path: Path, ctx: StageContext, meta: dict) -> Path:
    return export_onnx(model, path, ctx.input_shape, ctx.output_names, metadata=meta)


def _onnx_meta(ctx: StageContext, recipe_hash: str) -> dict:
    return {"edgekit_version": __version__, "landmark_scheme": ctx.meta.landmark_scheme,
            "mean": json.dumps(list(ctx.meta.mean)), "std": json.dumps(list(ctx.meta.std)),
            "input_size": str(ctx.input_size), "outputs": json.dumps(ctx.output_names), "recipe_hash": recipe_hash}


class Pipeline:
    def __init__(self, run: CompressRun):
        self.run = run
        self.dir = run.run_dir
        self.recipe_hash = sha256_json(run.recipe.model_dump())[:16]
        self.data_ids = {k: data_fingerprint(v) for k, v in run.recipe.data.model_dump().items()}

    def _stage_done(self, stage_dir: Path, key: str) -> dict | None:
        f = stage_dir / STAGE_FILE
        if not f.exists():
            return None
        try:
            record = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            return None  # unreadable (hand-edited?): the stage simply runs again
        return record if isinstance(record, dict) and record.get("key") == key else None

    def _source(self, multiple: int):
        """The model to compress, its stage context, and the hash and path that identify it."""
        r = self.run
        common = dict(data=r.recipe.data, run_dir=self.dir, progress=r.progress, channel_multiple=multiple,
                      seed=r.seed, workers=r.workers)
        if r.byom is not None:
            unsupported = [s.kind for s in r.recipe.stages if s.kind not in BYOM_STAGES]
            if unsupported:
                raise EdgekitError(f"recipe {r.recipe.name!r} has {', '.join(unsupported)} stages; bring-your-own "
                                   f"models take {' and '.join(BYOM_STAGES)} stages (recipes ptq_int8, fp16)")
            b = r.byom
            model = load_byom(b.factory, b.weights, b.input_shape, b.output_names, b.landmarks_output)
            meta = CheckpointMeta(arch=b.factory, input_size=b.input_shape[-1], mean=b.mean, std=b.std,
                                  outputs=tuple(model.output_names))
            ctx = ByomContext(model, b, r.recipe.data.calibration, meta=meta, **common)
            ident = sha256_json({"factory": b.factory, "weights": sha256_file(Path(b.weights)) if b.weights else None,
                                 "shape": b.input_shape, "mean": b.mean, "std": b.std})
            return model.module, ctx, ident, b.factory
        path = resolve(r.teacher or r.recipe.teacher)
        model, meta = load_checkpoint(path)
        return model, StageContext(teacher=model, meta=meta, **common), sha256_file(path), str(path)

    def execute(self) -> dict:
        r = self.run
        self.dir.mkdir(parents=True, exist_ok=True)
        multiple = max([t.channel_multiple for t in r.targets] or [8])
        teacher, ctx, teacher_hash, teacher_path = self._source(multiple)
        meta = ctx.meta
        for p in teacher.parameters():
            p.requires_grad_(False)
        onnx_meta = _onnx_meta(ctx, self.recipe_hash)
        steps = [self._teacher_step(teacher, ctx, teacher_hash, onnx_meta, "original" if r.byom else "teacher")]
        model, arch = teacher, {"arch": meta.arch, "arch_kwargs": meta.arch_kwargs, "pruned": meta.pruned}
        key = steps[0].key
        float_onnx, int8_onnx = self.dir / steps[0].artifact, None
        for i, item in enumerate(r.recipe.stages, start=1):
            stage_dir = self.dir / f"{i:02d}-{item.kind}"
            key = sha256_json({"input": key, "kind": item.kind, "config": item.config.model_dump(),
                               "student": r.recipe.student.model_dump() if r.recipe.student else None,
                               "student_init": _init_hash(r.recipe.student) if item.kind == "distill" else None,
                               "data": self.data_ids, "seed": r.seed, "version": __version__, "code": code_hash(),
                               # What targets change: channel rounding (prune) and the INT8 scheme (quantize).
                               "multiple": multiple if item.kind == "prune" else None,
                               "scheme": quant_scheme(r.targets, item.config).__dict__
                               if item.kind == "quantize" else None})
            done = self._stage_done(stage_dir, key)
            if done is not None:
                step = Step(**{**done["step"], "cached": True})
                if item.kind in ("distill", "prune"):
                    model, m = load_checkpoint(stage_dir / "model.safetensors")
                    arch = {"arch": m.arch, "arch_kwargs": m.arch_kwargs, "pruned": m.pruned}
                float_onnx, int8_onnx = self._outputs(item.kind, stage_dir, step, float_onnx, int8_onnx)
                steps.append(step)
                continue
            stage_dir.mkdir(parents=True, exist_ok=True)
            start = time.perf_counter()
            if item.kind in ("distill", "prune"):
                if item.kind == "distill":
                    model, arch_info, extra = run_distill(item.config, r.recipe.student, ctx)
                    arch = {**arch_info, "pruned": False}
                else:
                    # A copy: the input may be the frozen teacher that the context still uses as reference.
                    model, extra = run_prune(copy.deepcopy(model), item.config, ctx)
                    arch = {**arch, "pruned": True}
                ckpt_meta = CheckpointMeta(arch=arch["arch"], arch_kwargs=arch["arch_kwargs"], pruned=arch["pruned"],
                                           input_size=meta.input_size, mean=meta.mean, std=meta.std,
                                           provenance={"recipe": r.recipe.name, "stage": item.kind, "key": key})
                save_checkpoint(stage_dir / "model.safetensors", model, ckpt_meta)
                artifact = _onnx_for(model, stage_dir / "model.fp32.onnx", ctx, onnx_meta)
                metrics = ctx.evaluate(model)
            else:
                fp32 = _onnx_for(model, stage_dir / "model.fp32.onnx", ctx, onnx_meta)
                if item.kind == "fp16":
                    artifact, extra = run_fp16(fp32, item.config, stage_dir)
                elif item.config.mode == "qat":
                    artifact, extra = run_qat(model, item.config, quant_scheme(r.targets, item.config), ctx,
                                              stage_dir, onnx_meta)
                else:
                    artifact, extra = run_ptq(fp32, item.config, quant_scheme(r.targets, item.config), ctx,
                                              stage_dir)
                metrics = _score_onnx(ctx, artifact)
            macs, params = count_macs_params(model, ctx.input_shape)
            step = Step(name=_step_name(item.kind, item.config), key=key, params=params, macs=macs,
                        size_bytes=Path(artifact).stat().st_size, metrics=metrics,
                        artifact=str(Path(artifact).relative_to(self.dir)), wall_s=time.perf_counter() - start,
                        extra=extra)
            write_json(stage_dir / STAGE_FILE, {"key": key, "step": step.__dict__})
            float_onnx, int8_onnx = self._outputs(item.kind, stage_dir, step, float_onnx, int8_onnx)
            steps.append(step)
        artifacts = []
        if r.targets and r.byom is None:
            artifacts = self._export(ctx, model, float_onnx, int8_onnx, key)
        manifest = self._manifest(steps, teacher_path, teacher_hash)
        manifest["artifacts"] = artifacts
        manifest["accept"] = acceptance(r.recipe.accept, steps, artifacts) if r.byom is None else {"met": True}
        write_json(self.dir / MANIFEST, manifest)
        return manifest

    def _outputs(self, kind: str, stage_dir: Path, step: Step, float_onnx: Path, int8_onnx: Path | None):
        """The float ONNX model and the INT8 QDQ model as they stand after a stage."""
        if kind in ("distill", "prune"):
            return self.dir / step.artifact, int8_onnx
        if kind == "quantize":
            return stage_dir / "model.fp32.onnx", self.dir / step.artifact
        return float_onnx, int8_onnx

    def _export(self, ctx: StageContext, model: nn.Module, float_onnx: Path, int8_onnx: Path | None,
                key: str) -> list[dict]:
        calib = ctx.arrays(ctx.data.calibration)["x"][:EXPORT_CALIBRATION_IMAGES]
        evaluation = ctx.arrays(ctx.data.eval)
        src = ExportSources(float_model=model.eval(), fp32_onnx=float_onnx, int8_onnx=int8_onnx,
                            input_shape=ctx.input_shape, calibration=calib,
                            samples=evaluation["x"][:PARITY_SAMPLES], labels=evaluation["landmarks"][:PARITY_SAMPLES],
                            key=key, preprocess={"input_size": ctx.meta.input_size, "mean": list(ctx.meta.mean),
                                                 "std": list(ctx.meta.std), "layout": "NCHW", "color": "RGB"},
                            nme_budget=self.run.recipe.export_nme_budget,
                            selection=_selection_set(ctx), max_float_layers=self.run.recipe.max_float_layers)
        return export_all(src, self.run.targets, self.dir / "exports", progress=self.run.progress)

    def _teacher_step(self, teacher: nn.Module, ctx: StageContext, teacher_hash: str, onnx_meta: dict,
                      name: str) -> Step:
        stage_dir = self.dir / "00-teacher"
        key = sha256_json({"teacher": teacher_hash, "eval": self.data_ids["eval"], "version": __version__,
                           "code": code_hash()})
        done = self._stage_done(stage_dir, key)
        if done is not None:
            return Step(**{**done["step"], "cached": True})
        start = time.perf_counter()
        artifact = _onnx_for(teacher, stage_dir / "model.fp32.onnx", ctx, onnx_meta)
        macs, params = count_macs_params(teacher, ctx.input_shape)
        step = Step(name=name, key=key, params=params, macs=macs, size_bytes=artifact.stat().st_size,
                    metrics=ctx.evaluate(teacher), artifact=str(artifact.relative_to(self.dir)),
                    wall_s=time.perf_counter() - start)
        write_json(stage_dir / STAGE_FILE, {"key": key, "step": step.__dict__})
        return step

    def _manifest(self, steps: list[Step], teacher_path: str, teacher_hash: str) -> dict:
        r = self.run
        return {
            "schema": "edgekit-run/1",
            "recipe": r.recipe.model_dump(),
            "recipe_path": r.recipe_path,
            "recipe_hash": self.recipe_hash,
            "targets": [t.model_dump() for t in r.targets],
            "inputs": {"teacher": teacher_path, "teacher_sha256": teacher_hash, "data": self.data_ids,
                       "seed": r.seed},
            "versions": {k: v for k, v in package_versions().items() if v},
            "torch_threads": torch.get_num_threads(),
            "steps": [s.__dict__ for s in steps],
        }


def acceptance(accept, steps: list[Step], artifacts: list[dict]) -> dict:
    """Check the recipe's budgets against the final model and the artifacts; `missed` holds one line each."""
    teacher_nme, final = steps[0].metrics.get("nme"), steps[-1]
    nme = final.metrics.get("nme")
    missed = []
    if accept.max_nme_ratio is not None and nme is not None and teacher_nme:
        ratio = nme / teacher_nme
        if ratio > accept.max_nme_ratio:
            missed.append(f"accept.max_nme_ratio: {final.name} NME {100 * nme:.2f}% is {ratio:.2f}x the teacher's "
                          f"{100 * teacher_nme:.2f}% (budget {accept.max_nme_ratio:.2f}x)")
    if accept.max_nme is not None and nme is not None and nme > accept.max_nme:
        missed.append(f"accept.max_nme: {final.name} NME {100 * nme:.2f}% > {100 * accept.max_nme:.2f}%")
    for a in artifacts:
        if a.get("status") == Status.VALIDATION_FAILED:
            par = a.get("parity", {})
            change = par.get("relative_nme_change")
            detail = (f"NME +{100 * change:.1f}% over its float model (budget +{100 * par['nme_budget']:.1f}%)"
                      if change is not None and "nme_budget" in par else "parity check failed")
            missed.append(f"artifact {a['file']}: {detail}")
    return {"met": not missed, "missed": missed, "teacher_nme": teacher_nme, "final_nme": nme,
            "budgets": accept.model_dump()}


def _selection_set(ctx: StageContext) -> tuple:
    """Validation images and their targets (labels, or the teacher's outputs when unlabeled) that choose an
    export's float layers; parity then checks on eval data."""
    val = ctx.arrays(ctx.data.val)
    return val["x"][:FALLBACK_SELECTION_IMAGES], val["landmarks"][:FALLBACK_SELECTION_IMAGES]


def _init_hash(student) -> str | None:
    """A re-published zoo student (same name, new weights) must not reuse a cached distill stage."""
    return sha256_file(resolve(student.init)) if student is not None and student.init else None


def _step_name(kind: str, cfg) -> str:
    if kind == "quantize":
        return f"int8 ({cfg.mode})"
    return {"distill": "student", "prune": "pruned"}.get(kind, kind)


def _score_onnx(ctx: StageContext, path: Path) -> dict:
    from .runtime.ort import OrtSession

    session = OrtSession(path, threads=None)
    return ctx.score(session.run, ctx.data.eval)


def compress(run: CompressRun) -> dict:
    """Run the recipe. Bad input (exit 2) leaves nothing behind: a run directory this call created is removed."""
    # Fresh: nothing there yet but the third-party log the CLI opens first.
    fresh = not run.run_dir.exists() or {p.name for p in run.run_dir.iterdir()} <= {LOG_NAME}
    try:
        return Pipeline(run).execute()
    except EdgekitError:
        if fresh and run.run_dir.is_dir():
            shutil.rmtree(run.run_dir, ignore_errors=True)
        raise
