"""The stage protocol: every compression stage is a class with a typed config and one
`run(state, ctx) -> (state, report)` over a typed model state, registered by its `kind`.

The recipe schema (`edgekit.config.recipe`), the pipeline loop (`edgekit.pipeline`) and the docs all read the
one registry here. Stage classes live one per file in `edgekit.compress.stages` and register themselves when
that package is scanned, so a new stage kind is one new file there (plus its test). Modelled on Olive's passes
(a class with a config schema, run over a model handle) and timm's registry (register on definition, list by
name); see docs/ARCHITECTURE.md.

Light on purpose: loading a recipe scans the stages, so neither this module nor a stage file imports torch or
a runtime at module level; a stage imports its implementation inside `run`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel

from ..scan import import_modules

if TYPE_CHECKING:
    from torch import nn

    from .context import StageContext


@dataclass
class ModelState:
    """What flows from stage to stage: the float PyTorch model and the files that stand for it so far."""

    module: nn.Module  # the float model as it stands (frozen teacher, student, pruned model)
    arch: dict  # {"arch", "arch_kwargs", "pruned"}: how to rebuild `module` from a checkpoint
    float_onnx: Path  # `module` as ONNX
    int8_onnx: dict[str, Path] = field(default_factory=dict)  # the quantize stage's QDQ models, by scheme
    checkpoint: Path | None = None  # `module` as an edgekit checkpoint, once a stage has changed it
    key: str = ""  # cache key of the stage that produced this state (the input of the next one)

    def files(self, root: Path) -> dict:
        """The state's files relative to `root`, for the stage record (a cached rerun rebuilds the state)."""
        rel = lambda p: str(p.relative_to(root)) if p is not None else None  # noqa: E731
        return {"float_onnx": rel(self.float_onnx), "int8_onnx": {k: rel(v) for k, v in self.int8_onnx.items()},
                "checkpoint": rel(self.checkpoint)}

    def with_files(self, files: dict, root: Path) -> ModelState:
        """This state after a cached stage whose record holds `files`: reload the model if that stage made one."""
        from ..models.checkpoint import load_checkpoint

        path = lambda k: root / files[k] if files.get(k) else None  # noqa: E731
        state = replace(self, float_onnx=path("float_onnx"),
                        int8_onnx={k: root / v for k, v in (files.get("int8_onnx") or {}).items()},
                        checkpoint=path("checkpoint") or self.checkpoint)
        if state.checkpoint is not None and state.checkpoint != self.checkpoint:  # this stage made a new model
            if state.checkpoint.suffix == ".pt2":
                from ..models.export_archive import load_archive

                state.module = load_archive(state.checkpoint)
                state.arch = {**self.arch, "pruned": True}
            else:
                state.module, meta = load_checkpoint(state.checkpoint)
                state.arch = {"arch": meta.arch, "arch_kwargs": meta.arch_kwargs, "pruned": meta.pruned}
        return state


@dataclass
class StageReport:
    """What a stage tells the run table: the file its row measures, its metrics, and anything else."""

    name: str  # the row's label: student, pruned, int8 (ptq), fp16
    artifact: Path
    metrics: dict
    precision: str = "fp32"  # of `artifact`: fp32 | fp16 | int8
    extra: dict = field(default_factory=dict)  # stage-specific details for the manifest
    warnings: list[str] = field(default_factory=list)  # logged once by the pipeline, kept in the manifest


class Stage:
    """Base of every stage. Subclasses set `kind` and `Config`, and implement `run`."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    summary: ClassVar[str] = ""  # one line for the docs
    order: ClassVar[int] = 100  # where it is listed (docs, errors); recipes choose their own order
    final: ClassVar[bool] = False  # turns the float model into a deployable precision: must come last
    needs_student: ClassVar[bool] = False  # reads the recipe's `student:`
    any_model: ClassVar[bool] = False  # works on a bring-your-own model (ONNX-level), not only edgekit families

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
                raise TypeError(f"stage kind {cls.kind!r} is registered twice ({_REGISTRY[cls.kind].__module__} "
                                f"and {cls.__module__})")
            _REGISTRY[cls.kind] = cls

    def __init__(self, config: BaseModel):
        self.config = config

    def label(self) -> str:
        """The name of this stage's row in the run table."""
        return self.kind

    def key_inputs(self, ctx: StageContext) -> dict:
        """What besides the config, the input model, the data and the code decides this stage's output."""
        return {}

    def trains_input(self) -> bool:
        """Does this stage change the input model's PyTorch weights or structure (so an ONNX model of yours must
        be converted to PyTorch first)?"""
        return False

    def trains(self) -> bool:
        """Does this stage run a training loop (under torchrun, every rank runs it together; other stages run on
        rank 0 alone)?"""
        return self.trains_input()

    def makes_new_model(self) -> bool:
        """Does this stage replace the input with a model of its own (later stages and exports work on that)?"""
        return False

    def run(self, state: ModelState, ctx: StageContext) -> tuple[ModelState, StageReport]:
        raise NotImplementedError


_REGISTRY: dict[str, type[Stage]] = {}
_SCANNED = False


def registry() -> dict[str, type[Stage]]:
    """Stage kind -> class, in the order the stages package lists its files (imported on first use)."""
    global _SCANNED
    if not _SCANNED:
        import_modules(f"{__package__}.stages")
        _SCANNED = True
    return dict(sorted(_REGISTRY.items(), key=lambda kv: (kv[1].order, kv[0])))


def stage_class(kind: str) -> type[Stage]:
    found = registry().get(kind)
    if found is None:
        raise KeyError(f"unknown stage kind {kind!r}; expected one of {', '.join(registry())}")
    return found


def model_output(model: nn.Module, arch: dict, ctx: StageContext, name: str,
                 extra: dict) -> tuple[ModelState, StageReport]:
    """The end of a stage that makes a new float model: checkpoint, ONNX and evaluation, in the stage folder."""
    from ..models.checkpoint import CheckpointMeta, save_checkpoint
    from ..models.registry import FAMILIES

    meta = ctx.meta
    if arch["arch"] in FAMILIES:
        checkpoint = ctx.files.dir / "model.safetensors"
        save_checkpoint(checkpoint, model, CheckpointMeta(
            arch=arch["arch"], arch_kwargs=arch["arch_kwargs"], pruned=arch["pruned"], input_size=meta.input_size,
            mean=meta.mean, std=meta.std, outputs=tuple(ctx.output_names),
            provenance={"recipe": ctx.recipe_name, "recipe_file": ctx.recipe_file, "stage": name,
                        "stage_dir": ctx.files.dir.name, "key": ctx.files.key,
                        "data": {"train": ctx.data.train, "val": ctx.data.val},
                        "best_epoch": extra.get("best_epoch"), "student_init": extra.get("init")}))
    else:  # your own (pruned) module: no family rebuilds it, so it is kept as a torch.export archive
        from ..models.export_archive import save_archive

        checkpoint = save_archive(model, ctx.files.dir / "model.pt2", ctx.input_shape)
    onnx_path = ctx.files.export_onnx(model, ctx.files.dir / "model.fp32.onnx")
    state = ModelState(module=model, arch=arch, float_onnx=onnx_path, checkpoint=checkpoint)
    warnings = extra.pop("warnings", [])
    return state, StageReport(name=name, artifact=onnx_path, metrics=ctx.scoring.evaluate(model), extra=extra,
                              warnings=warnings)
