"""Your own model through every recipe, every target, bench and gate (issue 9).

Three model styles written here (tests/byom_models.py), none an edgekit family: (a) 68 points as (N, 136)
interleaved, no BatchNorm, ZeroPad2d before stride-2 convolutions, depthwise-separable, mean-only normalisation;
(b) 5 points planar among three outputs (box, points, softmax), PReLU; (c) 98 points as (N, 98, 2). Each goes
through distill_int8, prune_int8 and ptq_int8 (the shipped stage lists, shortened) for cpu, mobile and jetson,
from its factory or from an ONNX file of it (opset 20, so the opset relabelling is exercised): every pair of
style, source and recipe once.
"""

import json

import cv2
import pytest
import torch

from conftest import onnx_only_cpu_target
from edgekit.compress_cli import resolve_targets
from edgekit.config.recipe import load_recipe
from edgekit.data import render
from edgekit.errors import EdgekitError
from edgekit.models.byom import ByomSpec
from edgekit.pipeline import CompressRun, compress

STYLES = {
    "a": {"factory": "byom_models:style_a", "names": ["landmarks"], "spec": {"mean": (0.5, 0.5, 0.5)}},
    "b": {"factory": "byom_models:style_b", "names": ["box", "points", "face"],
          "spec": {"landmarks_output": "points", "landmarks_layout": "planar", "scheme": "five"}},
    "c": {"factory": "byom_models:style_c", "names": ["landmarks"], "spec": {"scheme": "wflw98"}},
}
RECIPES = {  # the shipped recipes' stages, with steps cut to seconds
    "distill_int8": "student: {arch: mobile, width: 0.25}\nstages:\n"
                    "  - distill: {epochs: 1, steps_per_epoch: 2, batch_size: 8}\n"
                    "  - quantize: {calibration: {images: 16}}\n",
    "prune_int8": "stages:\n  - prune: {importance: l2, target: {macs_ratio: 0.7}, steps: 1, "
                  "finetune: {epochs: 1, steps_per_epoch: 2, batch_size: 8}}\n"
                  "  - quantize: {calibration: {images: 16}}\n",
    "ptq_int8": "stages:\n  - quantize: {calibration: {images: 16}}\n",
}
# Recipes of single tests (not in the matrix).
MORE_RECIPES = {
    "distill_mmacs": RECIPES["distill_int8"].replace("{arch: mobile, width: 0.25}", "{mmacs: 1.5}"),
    "qat_int8": "stages:\n  - quantize: {mode: qat, calibration: {images: 16}, "
                "qat: {epochs: 1, steps_per_epoch: 2, batch_size: 8, lr: 0.00001}}\n",
}
TARGETS = "cpu,mobile,jetson"


@pytest.fixture(scope="module")
def crops(tmp_path_factory):
    """An unlabeled folder of face crops."""
    folder = tmp_path_factory.mktemp("crops")
    for i in range(32):
        cv2.imwrite(str(folder / f"{i:02d}.png"), render(5, i, size=64).image[:, :, ::-1])
    return folder


@pytest.fixture(scope="module")
def onnx_files(tmp_path_factory):
    import byom_models

    out = tmp_path_factory.mktemp("onnx")
    paths = {}
    for style, info in STYLES.items():
        model = getattr(byom_models, info["factory"].split(":")[1])().eval()
        paths[style] = out / f"style_{style}.onnx"
        torch.onnx.export(model, torch.zeros(1, 3, 64, 64), str(paths[style]), dynamo=False, opset_version=20,
                          input_names=["image"], output_names=info["names"],
                          dynamic_axes={"image": {0: "n"}, **{n: {0: "n"} for n in info["names"]}})
    return paths


def spec_for(style: str, source: str, onnx_files) -> ByomSpec:
    info = STYLES[style]
    kw = {"landmarks_output": "landmarks", **info["spec"]}
    if source == "onnx":
        return ByomSpec(str(onnx_files[style]), **kw)  # input shape read from the file
    return ByomSpec(info["factory"], input_shape=(1, 3, 64, 64), output_names=info["names"], **kw)


def run_recipe(name: str, spec: ByomSpec, crops, run_dir, targets=TARGETS, deploy=False) -> dict:
    path = run_dir.parent / f"{run_dir.name}.yaml"
    path.write_text(f"name: {name}\n" + {**RECIPES, **MORE_RECIPES}[name])
    rec = load_recipe(path)
    data = {"train": str(crops), "calibration": str(crops), "val": str(crops), "eval": str(crops)}
    rec = rec.model_copy(update={"data": rec.data.model_copy(update=data)})
    return compress(CompressRun(recipe=rec, run_dir=run_dir, targets=resolve_targets(targets), progress=False,
                                byom=spec, deploy=deploy)).to_json()  # the manifest as written


# Every pair of (style, source), (style, recipe) and (source, recipe) once: 9 runs instead of all 18 triples. A
# defect that needs one particular triple (not just a pair) would slip through; none of the contract readers,
# converters or stages depends on all three at once.
PAIRWISE = [("a", "factory", "distill_int8"), ("a", "onnx", "prune_int8"), ("a", "factory", "ptq_int8"),
            ("b", "onnx", "distill_int8"), ("b", "factory", "prune_int8"), ("b", "onnx", "ptq_int8"),
            ("c", "factory", "distill_int8"), ("c", "onnx", "prune_int8"), ("c", "onnx", "ptq_int8")]


def test_the_pairwise_cases_cover_every_pair():
    for i, j in ((0, 1), (0, 2), (1, 2)):
        values = (list(STYLES), ["factory", "onnx"], list(RECIPES))
        assert {(c[i], c[j]) for c in PAIRWISE} == {(x, y) for x in values[i] for y in values[j]}


@pytest.mark.parametrize(("style", "source", "recipe"), PAIRWISE)
def test_every_recipe_exports_for_every_target(style, source, recipe, crops, onnx_files, tmp_path):
    manifest = run_recipe(recipe, spec_for(style, source, onnx_files), crops, tmp_path / "run")
    steps, names = manifest["steps"], STYLES[style]["names"]
    original, final = steps[0], steps[-1]
    assert original["name"] == "original" and original["metrics"]["nme"] < 1e-5  # the original against itself
    # Landmark NME against the original, in the model's own scheme (its regions), and other outputs as fidelity.
    scheme_regions = {"a": "jaw", "b": "nose", "c": "pupils"}[style]
    assert scheme_regions in final["metrics"]["region_nme"]
    assert 0 < final["metrics"]["nme"] < 1.0  # random-weight models: a sanity bound, not a quality bar
    if style == "b":
        assert set(final["metrics"]["outputs"]) == {"box", "face"}
    if recipe == "prune_int8":
        assert steps[1]["macs"] < original["macs"]
    if recipe == "distill_int8":
        assert steps[1]["extra"]["arch"] == "mobile-contract"
    by_file = {a["file"]: a for a in manifest["artifacts"]}
    assert {"model.fp32.onnx", "model.int8.onnx", "model.int8.sym.onnx", "model.fp32.tflite", "model.int8.tflite",
            "model.fp16.onnx"} <= set(by_file)
    for a in by_file.values():
        if a["format"] == "tensorrt":  # no TensorRT here: a build script for the Jetson instead
            assert a["status"] == "build-on-device" and (tmp_path / "run/exports" / a["build_script"]).exists()
            continue
        assert a["status"] == "ok", (a["file"], a.get("error"), a.get("parity"))
        assert [o["name"] for o in a["io"]["outputs"]] == names or a["format"] == "tflite"
    # The compressed model speaks the original's contract: same outputs, same shapes.
    from edgekit.runtime.ort import OrtSession

    x = torch.zeros(2, 3, 64, 64).numpy()
    ref = OrtSession(tmp_path / "run" / original["artifact"]).run(x)
    got = OrtSession(tmp_path / "run/exports/model.int8.onnx").run(x)
    assert [g.shape for g in got] == [r.shape for r in ref]
    assert manifest["accept"]["met"], manifest["accept"]["missed"]


@pytest.mark.parametrize(("style", "source"), [("a", "factory"), ("b", "onnx"), ("c", "onnx")])
def test_bench_and_gate_on_your_models_artifacts(style, source, crops, onnx_files, tmp_path, cli):
    """bench reads the contract from the sidecar and scores landmarks in the model's scheme where labels of that
    scheme exist (68-point SynthFaces for style a), else measures latency and memory only; gate A/Bs INT8
    against FP32. Each style once, both sources among them: the artifacts bench reads are ONNX and TFLite files
    either way."""
    run = tmp_path / "run"
    run_recipe("ptq_int8", spec_for(style, source, onnx_files), crops, run, targets="cpu")
    labeled = ["--data", "synth:test:32"] if style == "a" else ["--eval-images", "0"]
    r = cli("bench", "--run", str(run), "--target", "cpu", "--quick", *labeled, "--out", str(tmp_path / "b"))
    assert r.returncode == 0, r.stderr
    records = json.loads((tmp_path / "b" / "bench.json").read_text())["records"]
    assert len(records) >= 3 and all(x["status"] == "ok" and x["latency"]["p50"] > 0 for x in records)
    if style == "a":  # against 68-point ground truth through the (N, 136) output, per region
        assert all(0 < x["accuracy"]["nme"] < 2 and "jaw" in x["accuracy"]["region_nme"] for x in records)
    r = cli("gate", "--candidate", str(run / "exports/model.int8.onnx"), "--baseline",
            str(run / "exports/model.fp32.onnx"), "--blocks", "3", *labeled[:2],
            *(["--eval-images", "16"] if style == "a" else []), "--threshold", "5", "--out", str(tmp_path / "g.json"))
    assert r.returncode in (0, 3), r.stdout + r.stderr  # 3 blocks: too few to call a regression, by design
    assert json.loads((tmp_path / "g.json").read_text())["latency"]["blocks"] == 3


def test_scheme_files_and_bad_declarations(tmp_path, onnx_files):
    from edgekit.models.byom import load_user_model
    from edgekit.schemes import load_scheme

    f = tmp_path / "my5.yaml"
    f.write_text("name: my5\npoints: 5\nnormalise: {between: [[0], [1]]}\nflip_pairs: [[0, 1], [3, 4]]\n"
                 "regions: {eyes: [0, 1], mouth: [3, 4]}\n")
    s = load_scheme(str(f))
    assert s.points == 5 and s.regions == {"eyes": (0, 2), "mouth": (3, 5)} and list(s.flip_permutation()) == [
        1, 0, 2, 4, 3]
    f.write_text("name: bad\npoints: 5\nnormalise: {between: [[0], [9]]}\n")
    with pytest.raises(EdgekitError, match=r"my5.yaml|bad|normalise.between\[1\]"):
        load_scheme(str(f))
    # Outputs that do not match the declared scheme: one line naming the output, its shape and what is needed.
    with pytest.raises(EdgekitError, match=r"output 'landmarks' has shape \(N, 136\), but scheme wflw98"):
        load_user_model(ByomSpec("byom_models:style_a", input_shape=(1, 3, 64, 64), output_names=["landmarks"],
                                 landmarks_output="landmarks", scheme="wflw98"))
    with pytest.raises(EdgekitError, match="the factory raised RuntimeError: CUDA out of memory"):
        load_user_model(ByomSpec("byom_models:raising_factory", input_shape=(1, 3, 64, 64)))


def test_onnx_op_the_converter_cannot_take_is_one_line(tmp_path, crops):
    """Pruning needs PyTorch; an ONNX op past opset 17 with a changed meaning is refused by name, exit 2, and
    the run directory this call created is gone."""
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, 64, 64])
    y = helper.make_tensor_value_info("landmarks", TensorProto.FLOAT, ["n", 136])
    axes = helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])
    nodes = [helper.make_node("ReduceMean", ["image", "axes"], ["m"], keepdims=0),
             helper.make_node("Tile", ["m", "reps"], ["t"]),
             helper.make_node("Slice", ["t", "s0", "s1", "ax"], ["landmarks"])]
    inits = [axes, helper.make_tensor("reps", TensorProto.INT64, [2], [1, 46]),
             helper.make_tensor("s0", TensorProto.INT64, [1], [0]), helper.make_tensor("s1", TensorProto.INT64, [1],
                                                                                      [136]),
             helper.make_tensor("ax", TensorProto.INT64, [1], [1])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y], inits),
                              opset_imports=[helper.make_opsetid("", 18)])
    onnx.save(model, tmp_path / "reduce18.onnx")
    with pytest.raises(EdgekitError, match=r"reduce18.onnx: op ReduceMean .* re-export the model with opset_vers"):
        run_recipe("prune_int8", ByomSpec(str(tmp_path / "reduce18.onnx"), landmarks_output="landmarks"), crops,
                   tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_converter_parity_failure_is_one_line(tmp_path, crops, onnx_files, monkeypatch):
    from edgekit.convert import onnx_to_torch

    monkeypatch.setattr(onnx_to_torch, "PARITY_TOLERANCE", -1.0)  # any difference at all now fails
    with pytest.raises(EdgekitError, match="converted PyTorch model differs from ONNX Runtime"):
        run_recipe("prune_int8", spec_for("c", "onnx", onnx_files), crops, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_student_sized_by_mmacs(crops, onnx_files, tmp_path):
    """The distilled student sized by a MACs target (ONNX only: the student's size is the subject)."""
    manifest = run_recipe("distill_mmacs", spec_for("b", "factory", onnx_files), crops, tmp_path / "m",
                          targets=str(onnx_only_cpu_target(tmp_path)))
    student = manifest["steps"][1]
    assert student["macs"] <= 1.5e6 and student["extra"]["mmacs_target"]["width"] >= 0.25


def test_a_resnet_student_for_your_model_is_refused_by_name(crops, tmp_path, cli):
    """`distill_int8` trains the teacher's ResNet shape; a student for your contract is the mobile family: one line
    naming the recipes that fit, never a silent swap of architecture."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: r\n" + RECIPES["distill_int8"].replace("{arch: mobile, width: 0.25}",
                                                                    "{arch: resnet, width: 0.25}"))
    r = cli("compress", "--recipe", str(recipe), "--model", "byom_models:style_a", "--input-shape", "1,3,64,64",
            "--landmarks-output", "output0", "--data", str(crops), "--target", str(onnx_only_cpu_target(tmp_path)),
            "--run-dir", str(tmp_path / "s"), "--quiet", "--no-deploy")
    assert r.returncode == 2 and "student.arch resnet" in r.stderr and "distill_int8_mobile" in r.stderr
    assert "Traceback" not in r.stderr


def test_your_own_student(crops, tmp_path, cli):
    """`--student pkg.mod:factory`, kept as a torch.export archive."""
    recipe = tmp_path / "d.yaml"
    recipe.write_text("name: d\ndata: {real: [dlib-voc]}\n" + RECIPES["distill_int8"])
    r = cli("compress", "--recipe", str(recipe), "--model", "byom_models:style_a", "--input-shape", "1,3,64,64",
            "--landmarks-output", "output0", "--mean", "0.5", "--student", "byom_models:tiny_student_a",
            "--data", str(crops), "--target", str(onnx_only_cpu_target(tmp_path)), "--run-dir", str(tmp_path / "s"),
            "--quiet", "--no-deploy")
    assert r.returncode == 0, r.stderr
    done = json.loads((tmp_path / "s" / "manifest.json").read_text())["steps"]
    assert done[1]["extra"]["arch"] == "byom_models:tiny_student_a"
    assert (tmp_path / "s" / "01-distill" / "model.pt2").exists()  # your student, kept as a torch.export archive
    assert done[1]["macs"] < done[0]["macs"] / 2
    # an ibug68 model is scored on the recipe's real faces beside every step, in the table and the manifest
    assert all(0 < s["metrics"]["real_nme"]["dlib-voc"] < 10 for s in done) and "NME dlib-voc" in r.stdout


def test_qat_on_your_own_module(crops, onnx_files, tmp_path):
    manifest = run_recipe("qat_int8", spec_for("a", "factory", onnx_files), crops, tmp_path / "q",
                          targets=str(onnx_only_cpu_target(tmp_path)))
    assert manifest["steps"][-1]["extra"]["qat"]["history"] and manifest["accept"]["met"]


def test_a_layer_torch_pruning_cannot_handle_is_skipped_with_a_named_warning(crops, tmp_path):
    spec = ByomSpec("byom_models:with_custom_layer", input_shape=(1, 3, 64, 64), landmarks_output="output0",
                    scheme="wflw98")
    manifest = run_recipe("prune_int8", spec, crops, tmp_path / "run", targets="cpu")
    pruned = manifest["steps"][1]
    assert any("no rule for ChannelScale (model.body.3)" in w for w in pruned["warnings"]), pruned["warnings"]
    assert pruned["macs"] < manifest["steps"][0]["macs"]  # the rest was still pruned
    assert manifest["accept"]["met"]
