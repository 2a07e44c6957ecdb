"""The stage protocol: one registry feeds the recipe schema and the pipeline; a new stage kind is one file."""

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import TESTS, TINY_DATA, onnx_only_cpu_target
from edgekit.compress.stage import Stage, registry, stage_class
from edgekit.config.recipe import Recipe

PACKAGE = Path(__file__).resolve().parents[1] / "toolkit" / "edgekit"

# A stage written the way a contributor would add one: this file, dropped into the stages package, is all.
NEW_STAGE = '''
"""bn_recalibrate: re-estimate BatchNorm statistics on training batches (a stage added by one file)."""
from __future__ import annotations

from ...config.base import Strict
from ..stage import ModelState, Stage, StageReport


class BnRecalibrateConfig(Strict):
    batches: int = 2


class BnRecalibrate(Stage):
    kind = "bn_recalibrate"
    Config = BnRecalibrateConfig
    summary = "re-estimate BatchNorm running statistics"

    def run(self, state, ctx):
        import copy
        import torch

        model = copy.deepcopy(state.module).train()
        with torch.no_grad():
            for _, batch in zip(range(self.config.batches), ctx.data.train_batches(8, self.config.batches)(0)):
                model(batch.images)
        model.eval()
        onnx_path = ctx.files.export_onnx(model, ctx.files.dir / "model.fp32.onnx")
        out = ModelState(module=model, arch=state.arch, float_onnx=onnx_path)
        return out, StageReport(name="recalibrated", artifact=onnx_path, metrics=ctx.scoring.evaluate(model),
                                extra={"batches": self.config.batches})
'''


def test_registry_lists_the_shipped_stages_with_typed_configs():
    kinds = list(registry())
    assert kinds[:4] == ["distill", "prune", "quantize", "fp16"]
    for kind, cls in registry().items():
        assert issubclass(cls, Stage) and cls.kind == kind and cls.summary
        assert cls.Config.model_json_schema()["title"]  # a typed (pydantic) config
    assert stage_class("quantize").final and stage_class("fp16").final and stage_class("distill").needs_student
    with pytest.raises(KeyError, match="unknown stage kind 'nope'; expected one of distill, prune"):
        stage_class("nope")


def test_recipe_schema_comes_from_the_registry():
    r = Recipe(name="x", student={"arch": "mobile", "width": 0.25},
               stages=[{"distill": {"epochs": 1}}, {"quantize": {"mode": "qat"}}])
    assert [s.kind for s in r.stages] == ["distill", "quantize"]
    assert r.stages[1].stage.label() == "int8 (qat)" and r.stages[0].stage.label() == "student"
    with pytest.raises(ValueError, match="each stage is one of distill, prune, quantize, fp16"):
        Recipe(name="x", stages=[{}])
    with pytest.raises(ValueError, match="quantize or fp16 must be the last stage"):
        Recipe(name="x", stages=[{"quantize": {}}, {"prune": {"target": {"macs_ratio": 0.5}}}])


def test_kind_strings_live_only_in_the_stage_files():
    """No dispatch by kind name outside the registry: the pipeline, recipe and bench ask the stage classes."""
    kinds = [k for k in registry() if k != "fp16"]  # "fp16" is also a precision name, used as such elsewhere
    pattern = re.compile("|".join(rf"[\"']{k}[\"']" for k in kinds))
    offenders = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if "stages" not in p.parts
                 for i, line in enumerate(p.read_text().splitlines(), 1) if pattern.search(line)]
    assert not offenders, offenders


def test_a_new_stage_kind_is_one_file(tiny_teacher, tmp_path):
    """The file goes into a folder that extends the stages package; recipe, pipeline and manifest pick it up."""
    extra = tmp_path / "more_stages"
    extra.mkdir()
    (extra / "bn_recalibrate.py").write_text(NEW_STAGE)
    data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: newstage\nteacher: {tiny_teacher}\ndata: {{{data}}}\nstages:\n"
                      "  - bn_recalibrate: {batches: 2}\n  - fp16: {}\n")
    code = textwrap.dedent(f"""
        import sys, json
        import edgekit.compress.stages as stages
        stages.__path__.append({str(extra)!r})  # the same as adding the file to the package
        from edgekit.cli import app
        sys.argv = ["edgekit", "compress", "--recipe", {str(recipe)!r}, "--run-dir", {str(tmp_path / 'run')!r},
                    "--workers", "0", "--quiet", "--no-deploy", "--target", {str(onnx_only_cpu_target(tmp_path))!r}]
        app()
    """)
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600,
                       env={**__import__("os").environ, "PYTHONPATH": str(TESTS)})
    assert r.returncode == 0, r.stderr[-2000:]
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert [s["kind"] for s in manifest["steps"]] == ["source", "bn_recalibrate", "fp16"]
    assert manifest["steps"][1]["name"] == "recalibrated" and manifest["steps"][1]["extra"] == {"batches": 2}
    assert manifest["steps"][2]["precision"] == "fp16"
    assert (tmp_path / "run" / "01-bn_recalibrate" / "stage.json").exists()


def test_pruning_importance_is_an_object_from_a_registry():
    """The prune code asks the criterion (gradients? comparable across groups?), never its name; a new one is one
    register() call and a recipe can name it."""
    import torch_pruning as tp

    from edgekit.compress import importance as imp
    from edgekit.compress.stages.prune import PruneConfig

    assert set(imp.names()) >= {"l1", "l2", "bn_scale", "taylor"}
    taylor = imp.criterion("taylor")
    assert isinstance(taylor.importance(), tp.importance.TaylorImportance) and taylor.needs_gradients
    assert isinstance(taylor.importance(gradients=False), tp.importance.MagnitudeImportance)  # trial copies
    assert taylor.across_groups(True) is not None and imp.criterion("l2").across_groups(True) is None
    with pytest.raises(ValueError, match="unknown importance 'nope'; expected one of l1, l2"):
        PruneConfig(importance="nope", target={"macs_ratio": 0.5})
    imp.register(imp.Criterion("l3", lambda: tp.importance.MagnitudeImportance(p=3)))
    try:
        cfg = PruneConfig(importance="l3", target={"macs_ratio": 0.5})
        assert imp.criterion(cfg.importance).importance().p == 3
    finally:
        imp._REGISTRY.pop("l3")
