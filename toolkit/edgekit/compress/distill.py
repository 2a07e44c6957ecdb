"""Distillation stage: train a student from the teacher's outputs (and labels when there are any)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from ..errors import EdgekitError
from ..models.checkpoint import load_checkpoint
from ..models.registry import build
from ..train import distributed
from ..train.kd import FeatureAdapters, kd_step
from ..train.loop import fit, fit_config
from .context import StageContext
from .kd_pool import TeacherPool

if TYPE_CHECKING:  # annotations only: config.recipe reads the stage registry, the stage file runs this module
    from ..config.recipe import StudentSpec
    from .stages.distill import DistillConfig

WIDTHS = tuple(w / 8 for w in range(2, 17))  # 0.25 .. 2.0: the grid a latency target picks from


def width_for_latency(arch: str, ctx: StageContext, latency_ms: float) -> tuple[float, dict[float, float]]:
    """The widest grid width whose fresh model measures at or under `latency_ms` (bisected: latency grows with
    width), and every width measured on the way."""
    seen: dict[float, float] = {}

    def fits(i: int) -> bool:
        seen[WIDTHS[i]] = round(ctx.latency.ms(build(arch, input_size=ctx.input_size, width=WIDTHS[i])), 4)
        return seen[WIDTHS[i]] <= latency_ms

    if not fits(0):
        raise EdgekitError(f"student.latency_ms {latency_ms}: even width {WIDTHS[0]} measures {seen[WIDTHS[0]]:.3f} "
                           f"ms here; raise the target or give a width")
    lo, hi = 0, len(WIDTHS)  # WIDTHS[lo] fits; WIDTHS[hi] does not (or is past the end)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (mid, hi) if fits(mid) else (lo, mid)
    return WIDTHS[lo], seen


def probability_outputs(ctx: StageContext) -> list[str]:
    """Names of the teacher's outputs that are probabilities (non-negative, summing to 1 on the last axis)."""
    ref, c = ctx.data.arrays(ctx.data.val)["reference"], ctx.contract
    return [c.names[i] for i in c.other_indices
            if ref[i].ndim >= 2 and ref[i].shape[-1] > 1 and (ref[i] >= 0).all()
            and abs(ref[i].sum(-1) - 1).max() < 1e-3]


def contract_student(spec: StudentSpec, ctx: StageContext) -> tuple[nn.Module, dict, dict]:
    """A student for your own model's output contract. With `init` (an edgekit checkpoint) every tensor whose
    name and shape match is copied: the backbone always, the landmark head too when scheme and size agree."""
    if spec.arch == "resnet" and spec.init is None:  # contract students are one family; say so, never swap silently
        raise EdgekitError("student.arch resnet: a student for your own model (--model) is the MobileNet-like "
                           "contract family; use --recipe distill_int8_mobile (or distill_int8_long), or give "
                           "student: {arch: mobile, width: W}")
    width = spec.width
    init_meta = None
    if spec.init is not None:
        from ..models.checkpoint import read_meta

        init_meta = read_meta(spec.init)
        width = init_meta.arch_kwargs.get("width", 1.0)
        # The layout too: its weights fit every layout, so a dropped one would load silently with other strides.
        head = {k: init_meta.arch_kwargs[k] for k in ("head_channels", "head_hidden", "layout")
                if k in init_meta.arch_kwargs}
    else:
        head = {}
    kwargs = {"width": width, "contract": ctx.contract.to_json(), "probabilities": probability_outputs(ctx), **head}
    student = build("mobile-contract", input_size=ctx.input_size, **kwargs)
    if ctx.contract.landmark_index is not None:
        student.head.init_landmark_bias(ctx.data.mean_teacher_landmarks())
    info = {}
    if init_meta is not None:
        source, _ = load_checkpoint(spec.init)
        own = student.state_dict()
        given = dict(source.state_dict())
        if ctx.contract.state_index is not None:  # an edgekit student's state head feeds your state output
            for kind in ("weight", "bias"):
                given[f"head.others.{ctx.contract.state_index}.{kind}"] = given.pop(f"head.states.{kind}", None)
        same = {k: v for k, v in given.items() if v is not None and k in own and own[k].shape == v.shape}
        student.load_state_dict(same, strict=False)
        info = {"init_tensors_copied": len(same), "init_tensors_total": len(own)}
    student.train()
    return student, {"arch": "mobile-contract", "arch_kwargs": kwargs}, info


def width_for_mmacs(arch: str, ctx: StageContext, mmacs: float, kwargs: dict | None = None) -> float:
    """The widest grid width whose fresh model has at most `mmacs` million MACs (MACs grow with width)."""
    from ..models.registry import count_macs_params

    fits = [w for w in WIDTHS
            if count_macs_params(build(arch, input_size=ctx.input_size, width=w, **(kwargs or {})),
                                 ctx.input_size)[0] <= mmacs * 1e6]
    if not fits:
        raise EdgekitError(f"student.mmacs {mmacs}: even width {WIDTHS[0]} has more MACs; raise it")
    return fits[-1]


def factory_student(spec: StudentSpec, ctx: StageContext) -> tuple[nn.Module, dict]:
    """Your own student module: its outputs must have the teacher's count and shapes."""
    from ..models.byom import OutputAdapter, build_from_factory

    student = OutputAdapter(build_from_factory(spec.factory, "student.factory"), list(ctx.output_names))
    with torch.no_grad():
        shapes = [tuple(t.shape[1:]) for t in student.eval()(torch.zeros(*ctx.input_shape))]
    want = [tuple(s) for s in ctx.contract.shapes]
    if shapes != want:
        raise EdgekitError(f"student.factory {spec.factory!r} outputs shapes {shapes}; the teacher's are {want}")
    student.train()
    return student, {"arch": spec.factory, "arch_kwargs": {}}


def initial_student(spec: StudentSpec, ctx: StageContext) -> tuple[nn.Module, dict]:
    """The student and its arch info: pre-trained weights from `spec.init`, else fresh weights."""
    if spec.init is None:
        student = build(spec.arch, input_size=ctx.input_size, width=spec.width)
        student.head.init_landmark_bias(ctx.data.mean_teacher_landmarks())
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
    own_model = getattr(ctx, "byom", None) is not None  # your own model is the teacher
    init_info: dict = {}
    if student_spec.mmacs is not None:
        arch = "mobile-contract" if own_model else student_spec.arch
        kwargs = {"contract": ctx.contract.to_json()} if own_model else {}
        width = width_for_mmacs(arch, ctx, student_spec.mmacs, kwargs)
        init_info["mmacs_target"] = {"mmacs": student_spec.mmacs, "width": width}
        student_spec = student_spec.model_copy(update={"width": width, "mmacs": None})
    if student_spec.factory is not None:
        student, arch_info = factory_student(student_spec, ctx)
    elif own_model:
        student, arch_info, copied = contract_student(student_spec, ctx)
        init_info.update(copied)
    else:
        student, arch_info = initial_student(student_spec, ctx)
    if student_spec.init is not None:  # where distillation starts, so the manifest shows what it earned
        start = ctx.scoring.evaluate(student)
        init_info["init_metrics"] = {k: start[k] for k in ("n", "nme", "real_nme") if k in start}
    warnings: list[str] = []
    if own_model and cfg.pool:
        # A pool reuses the teacher's outputs for flipped images, an approximation of running it on them; your
        # model teaches live instead, on exactly the augmented input the student sees.
        warnings.append(f"distill.pool {cfg.pool} ignored: your own model teaches live, on each augmented batch")
        cfg = cfg.model_copy(update={"pool": 0})
    if cfg.pool_augment and not cfg.pool:
        # Without a pool the batches come from the data, already augmented by its own transforms.
        warnings.append(f"distill.pool_augment {cfg.pool_augment} ignored: it augments a teacher pool's images, "
                        f"and this run has no pool")
    if (own_model or student_spec.factory) and cfg.loss.features > 0:
        warnings.append("distill.loss.features ignored: your own model has no forward_features()")
        cfg = cfg.model_copy(update={"loss": cfg.loss.model_copy(update={"features": 0.0})})
    adapters = None
    if cfg.loss.features > 0:
        if not hasattr(ctx.teacher, "forward_features"):
            raise EdgekitError("distill.loss.features > 0 needs a teacher with forward_features(); set it to 0")
        adapters = FeatureAdapters(student.feature_channels, ctx.teacher.feature_channels)
    if adapters is not None and "warp" in cfg.pool_augment:
        raise EdgekitError("distill.pool_augment 'warp' with distill.loss.features > 0: the teacher's stored "
                           "feature maps cannot be warped with the image; drop one of them")
    step = kd_step(ctx.teacher, cfg.loss, float(ctx.input_size), adapters, view=ctx.canonical)
    params = list(student.parameters()) + (list(adapters.parameters()) if adapters else [])
    world = distributed.init()  # under torchrun each rank trains on its share of every batch
    if adapters is not None and world.distributed:  # the step calls forward_features, around DDP's forward
        raise EdgekitError("distill.loss.features > 0 does not run under torchrun yet; set it to 0 there")
    if cfg.pool:
        pool = TeacherPool(ctx, cfg.pool, features=adapters is not None, augment=tuple(cfg.pool_augment))
        batches = lambda epoch: pool.batches(cfg.batch_size, cfg.steps_per_epoch, epoch, world)  # noqa: E731
    else:
        batches = ctx.data.train_batches(cfg.batch_size, cfg.steps_per_epoch, world)
    result = fit(student, fit_config(cfg, ctx.seed), batches, step, ctx.scoring.validate, description="distillation",
                 progress=ctx.progress, params=params)
    extra = {"arch": arch_info["arch"], **arch_info["arch_kwargs"], "init": student_spec.init,
             "best_epoch": result.best_epoch, "pool": cfg.pool, "val": result.best_metrics, "history": result.history,
             **init_info, "warnings": warnings}
    if latency is not None:
        extra["latency"] = latency
    return student, arch_info, extra
