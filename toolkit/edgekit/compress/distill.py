"""Distillation stage: train a student from the teacher's outputs (and labels when there are any)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import EdgekitError
from ..models.checkpoint import load_checkpoint
from ..models.registry import build
from ..train.kd import FeatureAdapters, kd_step
from ..train.loop import fit, fit_config
from .context import StageContext
from .kd_pool import TeacherPool

if TYPE_CHECKING:  # types only: config.recipe reads the stage registry in this room
    from ..config.recipe import StudentSpec
from .stages.distill import DistillConfig

WIDTHS = tuple(w / 8 for w in range(2, 17))  # 0.25 .. 2.0: the grid a latency target picks from


def width_for_latency(arch: str, ctx: StageContext, latency_ms: float) -> tuple[float, dict[float, float]]:
    """The widest grid width whose fresh model measures at or under `latency_ms` (bisected: latency grows with
    width), and every width measured on the way."""
    seen: dict[float, float] = {}

    def fits(i: int) -> bool:
        seen[WIDTHS[i]] = round(ctx.latency_ms(build(arch, input_size=ctx.input_size, width=WIDTHS[i])), 4)
        return seen[WIDTHS[i]] <= latency_ms

    if not fits(0):
        raise EdgekitError(f"student.latency_ms {latency_ms}: even width {WIDTHS[0]} measures {seen[WIDTHS[0]]:.3f} "
                           f"ms here; raise the target or give a width")
    lo, hi = 0, len(WIDTHS)  # WIDTHS[lo] fits; WIDTHS[hi] does not (or is past the end)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return WIDTHS[lo], seen


def initial_student(spec: StudentSpec, ctx: StageContext) -> tuple[nn.Module, dict]:
    """The student and its arch info: pre-trained weights from `spec.init`, else fresh weights."""
    if spec.init is None:
        student = build(spec.arch, input_size=ctx.input_size, width=spec.width)
        student.head.init_landmark_bias(ctx.mean_teacher_landmarks())
        return student, {"arch": spec.arch, "arch_kwargs": {"width": spec.width}}
    student, meta = load_checkpoint(spec.init)
    where = f"student.init {spec.init}"
    if meta.pruned:
        raise EdgekitError(f"{where}: a pruned checkpoint cannot be a distillation student; use an unpruned one")
    if meta.input_size != ctx.input_size:
        raise EdgekitError(f"{where}: input {meta.input_size}x{meta.input_size}, the teacher's is "
                           f"{ctx.input_size}x{ctx.input_size}")
    if tuple(meta.mean) != tuple(ctx.meta.mean) or tuple(meta.std) != tuple(ctx.meta.std):
        raise EdgekitError(f"{where}: normalisation mean/std {list(meta.mean)}/{list(meta.std)} differs from the "
                           f"teacher's {list(ctx.meta.mean)}/{list(ctx.meta.std)}")
    # arch/width written next to init must agree with the checkpoint, or the recipe would say one thing and run
    # another.
    for key, have in (("arch", meta.arch), ("width", meta.arch_kwargs.get("width", 1.0))):
        if getattr(spec, key) is not None and getattr(spec, key) != have:
            raise EdgekitError(f"{where} is {key} {have!r}, but the recipe's student.{key} is "
                               f"{getattr(spec, key)!r}; drop student.{key} or make them agree")
    student.train()
    return student, {"arch": meta.arch, "arch_kwargs": dict(meta.arch_kwargs)}


def run_distill(cfg: DistillConfig, student_spec: StudentSpec, ctx: StageContext):
    # Seeded here, not only in fit(): fresh student and adapter weights are drawn before the loop starts.
    latency = None
    if student_spec.latency_ms is not None:
        width, seen = width_for_latency(student_spec.arch, ctx, student_spec.latency_ms)
        latency = {"target_ms": student_spec.latency_ms, "width": width, "measured_ms": seen}
        student_spec = student_spec.model_copy(update={"width": width, "latency_ms": None})
    torch.manual_seed(ctx.seed)
    student, arch_info = initial_student(student_spec, ctx)
    adapters = None
    if cfg.loss.features > 0:
        if not hasattr(ctx.teacher, "forward_features"):
            raise EdgekitError("distill.loss.features > 0 needs a teacher with forward_features(); set it to 0")
        adapters = FeatureAdapters(student.feature_channels, ctx.teacher.feature_channels)
    step = kd_step(ctx.teacher, cfg.loss, float(ctx.input_size), adapters)
    params = list(student.parameters()) + (list(adapters.parameters()) if adapters else [])
    if cfg.pool:
        pool = TeacherPool(ctx, cfg.pool, features=adapters is not None)
        batches = lambda epoch: pool.batches(cfg.batch_size, cfg.steps_per_epoch, epoch)  # noqa: E731
    else:
        batches = ctx.train_batches(cfg.batch_size, cfg.steps_per_epoch)
    result = fit(student, fit_config(cfg, ctx.seed), batches, step, ctx.validate, description="distillation",
                 progress=ctx.progress, params=params)
    extra = {"arch": arch_info["arch"], **arch_info["arch_kwargs"], "init": student_spec.init,
             "best_epoch": result.best_epoch, "pool": cfg.pool, "val": result.best_metrics, "history": result.history}
    if latency is not None:
        extra["latency"] = latency
    return student, arch_info, extra
