"""Distillation stage: train a student from the teacher's outputs (and labels when there are any)."""

from __future__ import annotations

from ..config.recipe import DistillStage, StudentSpec
from ..errors import EdgekitError
from ..models.registry import build
from ..train.kd import FeatureAdapters, kd_step
from ..train.loop import FitConfig, fit
from .context import StageContext
from .kd_pool import TeacherPool


def fit_config(cfg, seed: int) -> FitConfig:
    return FitConfig(epochs=cfg.epochs, steps_per_epoch=cfg.steps_per_epoch, lr=cfg.lr, patience=cfg.patience,
                     seed=seed, warmup_epochs=min(1.0, cfg.epochs / 4))


def run_distill(cfg: DistillStage, student_spec: StudentSpec, ctx: StageContext):
    student = build(student_spec.arch, input_size=ctx.input_size, width=student_spec.width)
    student.head.init_landmark_bias(ctx.mean_teacher_landmarks())
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
    result = fit(student, fit_config(cfg, ctx.seed), batches, step, ctx.validate, description="distill",
                 progress=ctx.progress, params=params)
    extra = {"arch": student_spec.arch, "width": student_spec.width, "best_epoch": result.best_epoch, "pool": cfg.pool,
             "val": result.best_metrics, "history": result.history}
    return student, {"arch": student_spec.arch, "arch_kwargs": {"width": student_spec.width}}, extra
