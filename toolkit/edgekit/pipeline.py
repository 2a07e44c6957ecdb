"""Run a recipe: teacher -> stages -> artifacts, in `runs/<name>/`, resumable.

Each stage writes into its own folder and, last of all, `stage.json` holding its cache key and report. A rerun
skips a stage whose key (input hash + stage config + data + code version) matches, so Ctrl-C or a crash loses
at most the stage in flight. Every file is written atomically.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from . import __version__
from .artifact_record import ArtifactRecord, Status
from .atomic import write_bytes, write_json
from .bench.deploy import decide
from .bench.deploy_file import DEPLOY_FILE, deploy_summary
from .compress.byom import FIDELITY_BUDGET, ByomContext, ByomSpec
from .compress.context import StageContext
from .compress.stage import ModelState
from .config.recipe import Accept, Recipe
from .config.target import Target, int8_schemes
from .data.datasets import data_fingerprint
from .errors import EdgekitError
from .export.artifacts import FALLBACK_SELECTION_IMAGES, PARITY_SAMPLES, export_all
from .export.sources import ExportSources
from .fingerprint import keyed_versions, package_versions
from .hashing import code_hash, sha256_file, sha256_json
from .models.byom import OrtModule, load_user_model
from .models.checkpoint import CheckpointMeta, load_checkpoint, resolve
from .models.registry import count_macs_params
from .run_manifest import Acceptance, RunManifest, Step
from .thirdparty_log import LOG_NAME
from .train import distributed

EXPORT_CALIBRATION_IMAGES = 200
STAGE_FILE = "stage.json"
log = logging.getLogger("edgekit")


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
    deploy: bool = True  # after export, measure each target's artifacts there and choose (deploy.json)


def _onnx_meta(ctx: StageContext, recipe_hash: str) -> dict:
    return {"edgekit_version": __version__, "landmark_scheme": ctx.scheme.name,
            "mean": json.dumps(list(ctx.meta.mean)), "std": json.dumps(list(ctx.meta.std)),
            "input_size": str(ctx.input_size), "outputs": json.dumps(ctx.output_names), "recipe_hash": recipe_hash}


class Pipeline:
    def __init__(self, run: CompressRun):
        self.run = run
        self.dir = run.run_dir
        self.recipe_hash = sha256_json(run.recipe.model_dump())[:16]
        # `real` is a list of sets: one identity each (a list's repr is no path, so it read as "missing").
        self.data_ids = {k: [data_fingerprint(s) for s in v] if isinstance(v, list) else data_fingerprint(v)
                         for k, v in run.recipe.data.model_dump().items()}

    def _stage_done(self, stage_dir: Path, key: str) -> dict | None:
        """The stage's record when its key matches. A record that does not match (another config, older code,
        unreadable) is removed here, before the stage reruns: if this run dies mid-stage, no record of another
        config may vouch for a mix of its files and this run's."""
        f = stage_dir / STAGE_FILE
        if not f.exists():
            return None
        try:
            record = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError):
            record = None  # unreadable (hand-edited?): the stage simply runs again
        if isinstance(record, dict) and record.get("key") == key:
            return record
        f.unlink(missing_ok=True)
        return None

    def _recipe_file(self) -> str | None:
        """The recipe's YAML path when it is not the shipped recipe of that name (cards must say which file)."""
        from .config.catalog import available

        path = self.run.recipe_path
        shipped = available("recipes").get(self.run.recipe.name)
        if path is None or (shipped is not None and Path(path).resolve() == Path(shipped).resolve()):
            return None
        return path

    def _source(self, multiple: int):
        """The model to compress, its stage context, and the hash and path that identify it."""
        r = self.run
        common = dict(data=r.recipe.data, run_dir=self.dir, progress=r.progress, channel_multiple=multiple,
                      seed=r.seed, workers=r.workers, student=r.recipe.student, recipe_name=r.recipe.name,
                      recipe_file=self._recipe_file(),
                      int8_schemes=int8_schemes(r.targets))
        if r.byom is not None:
            b = r.byom
            model = load_user_model(b)
            meta = CheckpointMeta(arch=b.model, input_size=model.input_shape[-1], mean=b.mean, std=b.std,
                                  outputs=tuple(model.output_names))
            ctx = ByomContext(model, meta=meta, **common)
            source = Path(b.model) if b.source != "factory" else None
            ident = sha256_json({"model": b.model, "file": sha256_file(source) if source else None,
                                 "weights": sha256_file(Path(b.weights)) if b.weights else None,
                                 "spec": {k: v for k, v in b.__dict__.items() if k not in ("model", "weights")}})
            if model.module is None and self._needs_torch():
                model.torch_module(ctx.data.arrays(r.recipe.data.calibration, calibration=True)["x"][:16])
            return model.module or model.reference, ctx, ident, b.model
        path = resolve(r.teacher or r.recipe.teacher)
        model, meta = load_checkpoint(path)
        return model, StageContext(teacher=model, meta=meta, **common), sha256_file(path), str(path)

    def _needs_torch(self) -> bool:
        """Does an ONNX user model have to be converted to PyTorch: pruning, QAT, or a TFLite export of it."""
        stages = [item.stage for item in self.run.recipe.stages]
        if any(s.trains_input() for s in stages):
            return True
        replaced = any(s.makes_new_model() for s in stages)
        return not replaced and any(t.needs_torch_model for t in self.run.targets)

    def execute(self) -> RunManifest | None:
        """The cache loop: each stage runs unless its folder holds a record with the same key.

        Under torchrun every rank runs this loop in step: rank 0 decides from its cache and writes everything;
        the stages that train run on every rank together (each on its share of the batches, the others' files in a
        private folder); a stage that does not train runs on rank 0 alone and the others load its result as from
        the cache. So the run directory must be one every rank reads (on one node it is). Ranks other than 0
        return None once the stages are done: the exports and the deploy decision are rank 0's."""
        r = self.run
        world = distributed.init()
        self.dir.mkdir(parents=True, exist_ok=True)
        multiple = max([t.channel_multiple for t in r.targets] or [8])
        teacher, ctx, teacher_hash, teacher_path = self._source(multiple)
        self._ctx = ctx
        for p in teacher.parameters():
            p.requires_grad_(False)
        ctx.onnx_metadata = _onnx_meta(ctx, self.recipe_hash)
        name = "original" if r.byom else "teacher"
        first = self._teacher_step(teacher, ctx, teacher_hash, name) if world.main else None
        if world.distributed:
            first = Step.from_json(distributed.from_main(first.to_json() if first else None, world),
                                   self.dir / "00-teacher" / STAGE_FILE)
        steps = [first]
        state = ModelState(module=teacher, arch={"arch": ctx.meta.arch, "arch_kwargs": ctx.meta.arch_kwargs,
                                                 "pruned": ctx.meta.pruned},
                           float_onnx=self.dir / first.artifact, key=first.key)
        with tempfile.TemporaryDirectory(prefix=f"edgekit-rank{world.rank}-") as private:
            for i, item in enumerate(r.recipe.stages, start=1):
                stage = item.stage
                stage_dir = self.dir / f"{i:02d}-{stage.kind}"
                key = sha256_json({"input": state.key, "kind": stage.kind, "config": item.config.model_dump(),
                                   "data": self.data_ids, "seed": r.seed, "version": __version__,
                                   "code": code_hash(), "packages": keyed_versions(), **stage.key_inputs(ctx)})
                done = distributed.from_main(self._stage_done(stage_dir, key) if world.main else None, world)
                cached = done is not None
                if not cached and (world.main or stage.trains()):
                    work_dir = stage_dir if world.main else Path(private) / stage_dir.name
                    state, record = self._run_stage(stage, state, ctx.at(work_dir, key), key)
                    if world.main:
                        write_json(stage_dir / STAGE_FILE, record)
                        steps.append(Step.from_json(record["step"], stage_dir / STAGE_FILE))
                if not cached and world.distributed and not stage.trains():  # rank 0's result, as if cached
                    done = distributed.from_main(record if world.main else None, world)
                if done is not None and (cached or not world.main):
                    state = state.with_files(done["state"], self.dir)
                    steps.append(Step.from_json({**done["step"], "cached": cached}, stage_dir / STAGE_FILE))
                state.key = key
        if not world.main:
            return None
        (self.dir / DEPLOY_FILE).unlink(missing_ok=True)  # a decision about older artifacts is void
        manifest = self._manifest(steps, teacher_path, teacher_hash)
        if r.targets:
            manifest.artifacts = self._export(ctx, state)
        manifest.accept = acceptance(self._budgets(), steps, manifest.artifacts)
        manifest.write(self.dir)  # bench reads the finished run
        if r.deploy and manifest.artifacts:
            self._deploy(manifest)
            manifest.write(self.dir)
        return manifest

    def _run_stage(self, stage, state: ModelState, ctx: StageContext, key: str) -> tuple[ModelState, dict]:
        """Run one stage into ctx's folder; the new state and the stage record (relative to the run directory)."""
        ctx.files.dir.mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        state, report = stage.run(state, ctx)
        for w in report.warnings:
            log.warning("%s", w)
        macs, params = count_macs_params(state.module, ctx.input_shape)
        root = self.dir if report.artifact.is_relative_to(self.dir) else ctx.files.dir.parent
        step = Step(name=report.name, kind=stage.kind, precision=report.precision, key=key, params=params,
                    macs=macs, size_bytes=report.artifact.stat().st_size, metrics=report.metrics,
                    artifact=str(report.artifact.relative_to(root)), wall_s=time.perf_counter() - start,
                    extra=report.extra, warnings=report.warnings)
        return state, {"key": key, "step": step.to_json(), "state": state.files(root)}

    def _budgets(self) -> Accept:
        """The recipe's `accept:`. Your model on unlabeled data: the NME budgets have no ground truth there, but
        the real faces (scored for an ibug68 model) do, so their budget still holds."""
        accept = self.run.recipe.accept
        if self.run.byom is None or self._ctx.scoring.labeled():
            return accept
        return Accept(max_real_nme_ratio=accept.max_real_nme_ratio)

    def _deploy(self, manifest: RunManifest) -> None:
        """Measure each target's artifacts there (locally, or over its host:) and choose; budget misses join
        the recipe's."""
        data = self.run.recipe.data.eval  # the recipe's evaluation data (SynthFaces v3 for a v3 recipe)
        if self.run.byom is not None:  # score on the run's eval data when it has labels in the model's scheme
            data = data if self._ctx.scoring.labeled() else None
        over = over_recipe_budget(self._budgets(), manifest.steps, manifest.artifacts)
        doc = decide(self.dir, self.run.targets, self.run.recipe.export_nme_budget, progress=self.run.progress,
                     data=data, over_recipe=list(over.values()))
        manifest.deploy = deploy_summary(doc)
        manifest.accept.add_missed(doc.budget_missed)
        # A deployed file over a budget the final step meets (the step table said "met"): say which file.
        step_missed = recipe_budget_misses(self._budgets(), manifest.steps[0].metrics, manifest.steps[-1].metrics)
        manifest.accept.add_missed([f"{name}: deployed {d.chosen.file}: {tier[d.chosen.file]}"
                                    for name, d in doc.targets.items() for key, tier in over.items()
                                    if d.chosen and d.chosen.file in tier and key not in step_missed])

    def _export(self, ctx: StageContext, state: ModelState) -> list[ArtifactRecord]:
        calib = ctx.data.arrays(ctx.data.calibration, calibration=True)["x"][:EXPORT_CALIBRATION_IMAGES]
        evaluation = ctx.data.arrays(ctx.data.eval)
        own = self.run.byom is not None
        absolute = own and not evaluation["labeled"]  # NME is fidelity to the original: the budget is absolute
        budget = self.run.recipe.export_nme_budget
        if absolute:
            budget = min(budget, FIDELITY_BUDGET)
        labels = evaluation["landmarks"][:PARITY_SAMPLES] if evaluation["landmarks"] is not None else None
        preprocess = {"input_size": ctx.meta.input_size, "mean": list(ctx.meta.mean), "std": list(ctx.meta.std),
                      "layout": "NCHW", "color": "RGB"}
        if own:
            preprocess["outputs"] = ctx.contract.to_json()  # how bench reads landmarks from these outputs
        src = ExportSources(float_model=state.module.eval(), fp32_onnx=state.float_onnx, int8_onnx=state.int8_onnx,
                            input_shape=ctx.input_shape, calibration=calib,
                            samples=evaluation["x"][:PARITY_SAMPLES], labels=labels,
                            key=state.key, preprocess=preprocess, nme_budget=budget,
                            selection=_selection_set(ctx) if labels is not None else None,
                            max_float_layers=self.run.recipe.max_float_layers,
                            max_float_params=self.run.recipe.max_float_params, contract=ctx.contract,
                            absolute_budget=absolute, evaluate=ctx.scoring.evaluate)
        return export_all(src, self.run.targets, self.dir / "exports", progress=self.run.progress)

    def _teacher_step(self, teacher: nn.Module, ctx: StageContext, teacher_hash: str, name: str) -> Step:
        stage_dir = self.dir / "00-teacher"
        key = sha256_json({"teacher": teacher_hash, "eval": self.data_ids["eval"], "version": __version__,
                           "code": code_hash(), "packages": keyed_versions()})
        done = self._stage_done(stage_dir, key)
        if done is not None:
            return Step.from_json({**done["step"], "cached": True}, stage_dir / STAGE_FILE)
        start = time.perf_counter()
        if isinstance(teacher, OrtModule):  # your ONNX model: the float ONNX is the file itself, as given
            artifact = stage_dir / "model.fp32.onnx"
            write_bytes(artifact, teacher.path.read_bytes())
        else:
            artifact = ctx.files.export_onnx(teacher, stage_dir / "model.fp32.onnx")
        measured = teacher
        if isinstance(teacher, OrtModule):  # MACs are counted in PyTorch: convert if the file allows it
            try:
                measured = ctx.byom.torch_module(ctx.data.arrays(ctx.data.calibration, calibration=True)["x"][:16])
            except EdgekitError as exc:
                log.warning("MACs of %s not counted: %s", teacher.path.name, exc)
        macs, params = count_macs_params(measured, ctx.input_shape)
        step = Step(name=name, kind="source", key=key, params=params, macs=macs, size_bytes=artifact.stat().st_size,
                    metrics=ctx.scoring.evaluate(teacher), artifact=str(artifact.relative_to(self.dir)),
                    wall_s=time.perf_counter() - start)
        write_json(stage_dir / STAGE_FILE, {"key": key, "step": step.to_json()})
        return step

    def _manifest(self, steps: list[Step], teacher_path: str, teacher_hash: str) -> RunManifest:
        r = self.run
        return RunManifest(
            recipe=r.recipe.model_dump(), recipe_path=r.recipe_path, recipe_hash=self.recipe_hash,
            targets=[t.model_dump() for t in r.targets],
            inputs={"teacher": teacher_path, "teacher_sha256": teacher_hash, "data": self.data_ids, "seed": r.seed},
            versions={k: v for k, v in package_versions().items() if v}, torch_threads=torch.get_num_threads(),
            steps=steps)


EVAL_SPLIT = "the evaluation split"


def recipe_budget_misses(accept, teacher: dict, mine: dict) -> dict[str, str]:
    """Budget key -> why, for the budgets of `accept` that a model's metrics (`nme`, `real_nme`) break against the
    teacher's: `max_nme_ratio` on the evaluation split, `max_real_nme_ratio` on each real set (first one missed)."""
    ref = {EVAL_SPLIT: teacher.get("nme"), **teacher.get("real_nme", {})}
    got = {EVAL_SPLIT: mine.get("nme"), **mine.get("real_nme", {})}
    out = {}
    for key, limit, sets in (("max_nme_ratio", accept.max_nme_ratio, [EVAL_SPLIT]),
                             ("max_real_nme_ratio", accept.max_real_nme_ratio, [k for k in got if k != EVAL_SPLIT])):
        for where in sets if limit is not None else ():
            nme, base = got.get(where), ref.get(where)
            if nme is not None and base and nme / base > limit:
                out[key] = (f"NME {100 * nme:.2f}% on {where} is {nme / base:.3f}x the teacher's {100 * base:.2f}% "
                            f"(recipe accept.{key} {limit:.2f}x)")
                break
    return out


def over_recipe_budget(accept, steps: list[Step], artifacts: list[ArtifactRecord]) -> dict[str, dict[str, str]]:
    """Per recipe budget missed by some file, first `max_nme_ratio` then `max_real_nme_ratio`: the run-relative
    files over it, with why, by the file's own NME (its sidecar's `accuracy`). The step table judges the quantize
    stage's model; an exported file (another runtime's INT8, its float layers) can land elsewhere, and the deploy
    decision must not pick one the recipe would refuse."""
    if accept is None or not steps:
        return {}
    tiers: dict[str, dict[str, str]] = {"max_nme_ratio": {}, "max_real_nme_ratio": {}}
    for a in artifacts:
        for key, why in recipe_budget_misses(accept, steps[0].metrics, a.accuracy or {}).items():
            tiers[key][f"exports/{a.file}"] = why
    return {k: v for k, v in tiers.items() if v}


def acceptance(accept, steps: list[Step], artifacts: list[ArtifactRecord]) -> Acceptance:
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
    teacher_real, final_real = steps[0].metrics.get("real_nme", {}), final.metrics.get("real_nme", {})
    for spec, got in final_real.items():
        ref = teacher_real.get(spec)
        if accept.max_real_nme_ratio is not None and ref and got / ref > accept.max_real_nme_ratio:
            missed.append(f"accept.max_real_nme_ratio: {final.name} NME on {spec} {100 * got:.2f}% is "
                          f"{got / ref:.2f}x the teacher's {100 * ref:.2f}% (budget {accept.max_real_nme_ratio:.2f}x)")
    for a in artifacts:
        if a.status == Status.VALIDATION_FAILED:
            par = a.parity or {}
            change = par.get("relative_nme_change")
            detail = (f"NME +{100 * change:.1f}% over its float model (budget +{100 * par['nme_budget']:.1f}%)"
                      if change is not None and "nme_budget" in par else "parity check failed")
            if "nme_budget_absolute" in par:
                detail = (f"landmarks move {100 * par['nme_change']:.2f}% of the normalising distance from the "
                          f"original's (budget {100 * par['nme_budget_absolute']:.2f}%)")
            missed.append(f"artifact {a.file}: {detail}")
    return Acceptance(met=not missed, missed=missed, teacher_nme=teacher_nme, final_nme=nme,
                      budgets=accept.model_dump())


def _selection_set(ctx: StageContext) -> tuple:
    """Validation images and their targets (labels, or the teacher's outputs when unlabeled) that choose an
    export's float layers; parity then checks on eval data."""
    val = ctx.data.arrays(ctx.data.val)
    return val["x"][:FALLBACK_SELECTION_IMAGES], val["landmarks"][:FALLBACK_SELECTION_IMAGES]


def compress(run: CompressRun) -> RunManifest | None:
    """Run the recipe. Bad input (exit 2) leaves nothing behind: a run directory this call created is removed."""
    # Fresh: nothing there yet but the third-party log the CLI opens first.
    fresh = not run.run_dir.exists() or {p.name for p in run.run_dir.iterdir()} <= {LOG_NAME}
    try:
        return Pipeline(run).execute()
    except EdgekitError:
        if fresh and run.run_dir.is_dir():
            shutil.rmtree(run.run_dir, ignore_errors=True)
        raise
