"""Each compression stage on tiny configs: distill, prune, PTQ (with fallback), QAT, FP16."""

import copy
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from edgekit.compress.distill import run_distill
from edgekit.compress.prune import run_prune
from edgekit.compress.qat import fold_batchnorm, run_qat
from edgekit.compress.quantize import QuantScheme, run_ptq
from edgekit.compress.stages.distill import DistillConfig
from edgekit.compress.stages.prune import PruneConfig
from edgekit.compress.stages.quantize import QuantizeConfig
from edgekit.config.recipe import StudentSpec
from edgekit.convert.fp16 import onnx_to_fp16
from edgekit.convert.onnx import export_onnx
from edgekit.errors import EdgekitError
from edgekit.models.checkpoint import load_checkpoint

NAMES = ["landmarks", "states"]


def onnx_ops(path):
    return [n.op_type for n in onnx.load(str(path)).graph.node]


def test_distill_trains_the_named_student_with_feature_adapters(tiny_context):
    cfg = DistillConfig(epochs=1, steps_per_epoch=3, batch_size=16, loss={"features": 0.5})
    student, arch, extra = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), tiny_context)
    assert arch == {"arch": "mobile", "arch_kwargs": {"width": 0.25}}
    assert extra["history"][0]["loss"] > 0 and 0 < extra["val"]["nme"] < 1
    lm, st = student(torch.zeros(1, 3, 112, 112))
    assert lm.shape == (1, 68, 2) and st.shape == (1, 3)


def test_distill_from_a_pretrained_student_fine_tunes_its_weights(tiny_context, tiny_teacher, tmp_path):
    """`student: {init: ...}` starts from the checkpoint's weights, arch and width, then trains them."""
    from edgekit.errors import EdgekitError

    start, meta = load_checkpoint(tiny_teacher)  # a mobile 0.25 checkpoint stands in for a zoo student
    cfg = DistillConfig(epochs=1, steps_per_epoch=3, batch_size=16, lr=1e-3)
    student, arch, extra = run_distill(cfg, StudentSpec(init=str(tiny_teacher)), tiny_context)
    assert arch == {"arch": "mobile", "arch_kwargs": {"width": 0.25}} and extra["init"] == str(tiny_teacher)
    before, after = start.state_dict(), student.state_dict()
    assert before.keys() == after.keys()
    changed = [k for k in before if before[k].is_floating_point() and not torch.equal(before[k], after[k])]
    assert changed, "fine-tuning should move the weights"
    # Starting from trained weights, a 3-step run stays near them; fresh weights would be far off.
    drift = max((after[k] - before[k]).abs().max().item() for k in changed if "running" not in k)
    assert drift < 0.1
    with pytest.raises(EdgekitError, match="recipe's student.width is 0.5"):
        run_distill(cfg, StudentSpec(init=str(tiny_teacher), width=0.5), tiny_context)


def test_distill_repeats_exactly_with_the_same_seed(tiny_context):
    """Same seed and threads: the same student, to the bit (the weights are drawn after seeding)."""
    cfg = DistillConfig(epochs=1, steps_per_epoch=3, batch_size=8, pool=24, loss={"features": 0.5})
    torch.manual_seed(123)  # whatever ran before must not matter
    a, _, ea = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), tiny_context)
    torch.rand(7)
    b, _, eb = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), tiny_context)
    assert ea["val"]["nme"] == eb["val"]["nme"]
    assert all(torch.equal(a.state_dict()[k], b.state_dict()[k]) for k in a.state_dict())


def test_distill_works_on_unlabeled_images_with_teacher_pseudo_labels(tiny_context, tmp_path):
    import cv2

    from edgekit.data import render

    folder = tmp_path / "unlabeled"
    folder.mkdir()
    for i in range(12):
        cv2.imwrite(str(folder / f"{i}.png"), render(9, i).image[:, :, ::-1])
    ctx = tiny_context.with_data(tiny_context.data.spec.model_copy(update={"train": str(folder), "val": str(folder)}))
    cfg = DistillConfig(epochs=1, steps_per_epoch=2, batch_size=8)
    student, _, extra = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), ctx)
    # Against the teacher's own predictions: NME is fidelity, states are the teacher's decisions.
    assert 0 < extra["val"]["nme"] < 1 and extra["val"]["n"] == 12


def test_ptq_writes_a_per_channel_qdq_model_that_runs_and_warns_on_small_calibration(tiny_context, tmp_path):
    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, ort_format="qdq"), QuantScheme(),
                         tiny_context, tmp_path)
    ops = onnx_ops(out)
    assert "QuantizeLinear" in ops and "DequantizeLinear" in ops
    weights_dq = [n for n in onnx.load(str(out)).graph.node
                  if n.op_type == "DequantizeLinear" and any(a.name == "axis" for a in n.attribute)]
    assert weights_dq, "per-channel weight quantization has an axis"
    assert out.stat().st_size < 0.5 * fp32.stat().st_size
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    lm, st = sess.run(None, {"image": np.zeros((2, 3, 112, 112), np.float32)})
    assert lm.shape == (2, 68, 2) and st.shape == (2, 3)
    assert extra.warnings and "40 images (< 100)" in extra.warnings[0]
    assert extra.quantized_layers > 0


def test_ort_format_auto_times_qdq_against_qoperator_and_keeps_the_faster(tiny_context, tmp_path):
    from edgekit.compress.quantize import FLOAT_INPUT, FORMAT_MARGIN

    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None), QuantScheme(),
                         tiny_context, tmp_path)
    fmt = extra.ort_format
    # three candidates: the teacher's stem reads the 3-channel image, so QOperator with it in float is timed too
    assert set(fmt["p50_ms"]) == {"qdq", "qoperator", FLOAT_INPUT} and min(fmt["p50_ms"].values()) > 0
    faster = {k: v for k, v in fmt["p50_ms"].items() if v < fmt["p50_ms"]["qdq"] * (1 - FORMAT_MARGIN)}
    assert fmt["chosen"] == (min(faster, key=faster.get) if faster else "qdq")
    ops = onnx_ops(out)
    assert ("QLinearConv" in ops) == (fmt["chosen"] != "qdq")  # the file is the chosen form
    stem = onnx.load(str(out)).graph.node
    reads_image = [n.op_type for n in stem if "image" in n.input]
    if fmt["chosen"] == FLOAT_INPUT:  # the image goes straight into a float Conv, and the report names it
        assert reads_image == ["Conv"] and fmt["float_input"] and set(fmt["float_input"]) <= set(extra.float_layers)
    else:
        assert reads_image == ["QuantizeLinear"] and fmt["float_input"] == []
    assert not list(tmp_path.glob("model.qop*.onnx"))


@pytest.mark.parametrize("form", ["qoperator", "qoperator-float-input"])
def test_forced_qoperator_is_fused_int8_with_the_same_accuracy(tiny_context, tmp_path, form):
    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None, ort_format=form),
                         QuantScheme(), tiny_context, tmp_path)
    ops = onnx_ops(out)
    # QOperator throughout, or with exactly the stem (the one conv reading the image) left float
    assert "QLinearConv" in ops and ops.count("Conv") == (form != "qoperator")
    nme = extra.ort_format["val_nme"]
    assert extra.ort_format["chosen"] == form and abs(nme[form] - nme["qdq"]) < 0.1 * nme["qdq"]
    assert extra.ort_format["p50_ms"] is None and extra.float_layers == extra.ort_format["float_input"]
    assert len(extra.float_layers) == (form != "qoperator")
    lm, st = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"]).run(
        None, {"image": np.zeros((2, 3, 112, 112), np.float32)})
    assert lm.shape == (2, 68, 2) and st.shape == (2, 3)


def test_symmetric_scheme_has_zero_points_of_zero(tiny_context, tmp_path):
    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None),
                         QuantScheme(symmetric_activations=True), tiny_context, tmp_path)
    model = onnx.load(str(out))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    zps = [inits[n.input[2]] for n in model.graph.node if n.op_type in ("QuantizeLinear", "DequantizeLinear")
           and len(n.input) > 2 and n.input[2] in inits]
    assert zps and all(np.all(z == 0) for z in zps)
    assert {z.dtype for z in zps} <= {np.dtype(np.int8), np.dtype(np.int32)}  # int32 only for biases, no uint8
    assert extra.ort_format is None  # TensorRT's scheme stays QDQ


def test_qat_fine_tunes_with_fake_quant_and_exports_qdq(tiny_context, tmp_path):
    cfg = QuantizeConfig(mode="qat", calibration={"images": 40}, qat={"epochs": 1, "steps_per_epoch": 2,
                                                                     "batch_size": 8})
    out, extra = run_qat(copy.deepcopy(tiny_context.teacher), cfg, QuantScheme(), tiny_context, tmp_path, {})
    assert "QuantizeLinear" in onnx_ops(out)
    assert extra.qat.history and extra.qat.val_nme_fake_quant > 0 and extra.qat.fp32_onnx.exists()


def test_batchnorm_folding_keeps_the_function():
    from edgekit.models.registry import build

    model = build("mobile", width=0.25).eval()
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    x = torch.randn(2, 3, 112, 112)
    ref = model(x)[0]
    folded = fold_batchnorm(copy.deepcopy(model))
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert torch.allclose(folded(x)[0], ref, atol=1e-4)


def test_fp16_keeps_float32_io(tiny_context, tmp_path):
    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out = onnx_to_fp16(fp32, tmp_path / "m.fp16.onnx")
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    assert sess.get_inputs()[0].type == "tensor(float)"
    x = np.random.default_rng(0).normal(size=(1, 3, 112, 112)).astype(np.float32)
    ref = ort.InferenceSession(str(fp32), providers=["CPUExecutionProvider"]).run(None, {"image": x})[0]
    assert np.abs(sess.run(None, {"image": x})[0] - ref).max() < 1e-2


def test_distill_from_a_teacher_pool_uses_precomputed_targets(tiny_context):
    from edgekit.compress.kd_pool import TeacherPool

    pool = TeacherPool(tiny_context, 40, features=True)
    batch = next(pool.batches(8, 1, epoch=0))
    assert batch.teacher_landmarks.shape == (8, 68, 2) and batch.teacher_features.shape[0] == 8
    with torch.no_grad():  # targets are the teacher's outputs on the (possibly flipped) image in the batch
        lm, _ = tiny_context.teacher(batch.images)
    assert torch.allclose(lm, batch.teacher_landmarks, atol=0.05)
    cfg = DistillConfig(epochs=1, steps_per_epoch=3, batch_size=8, pool=40, loss={"features": 0.5})
    student, _, extra = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), tiny_context)
    assert extra["pool"] == 40 and extra["history"][0]["loss"] > 0


def test_pool_augmentation_moves_image_and_target_points_together(tiny_context):
    from edgekit.compress.kd_pool import TeacherPool

    pool = TeacherPool(tiny_context, 6, features=False, augment=("warp", "photometric"))
    pool.images[:] = 0  # a bright dot at each image's target nose tip (30: on the midline, flips onto itself)
    for i, (x, y) in enumerate(np.random.default_rng(0).integers(40, 72, (len(pool), 2))):
        pool.images[i, y - 2:y + 3, x - 2:x + 3] = 255
        pool.t_lm[i, 30] = (x + 0.5) / 112, (y + 0.5) / 112
    moved = []
    for epoch in range(3):
        pool.epoch = epoch
        for i in range(len(pool)):
            s = pool[i]
            ys, xs = np.nonzero(s.image.max(-1) > s.image.max() * 0.5)
            dot = np.array([xs.mean(), ys.mean()]) + 0.5  # pixel centres
            assert np.abs(dot - s.teacher_landmarks[30] * 112).max() < 1.5
            assert not np.allclose(s.teacher_landmarks, pool.t_lm[i])
            moved.append(np.abs(dot / 112 - pool.t_lm[i, 30]).max())
    assert max(moved) > 0.02  # warped, not only flipped (a flip keeps the midline dot's x within a pixel or so)
    _, _, extra = run_distill(DistillConfig(epochs=1, steps_per_epoch=1, batch_size=4, pool_augment=["warp"]),
                              StudentSpec(arch="mobile", width=0.25), tiny_context)
    assert any("pool_augment ['warp'] ignored" in w for w in extra["warnings"])  # no pool: said, not silent
    with pytest.raises(EdgekitError, match="pool_augment"):
        run_distill(DistillConfig(epochs=1, steps_per_epoch=1, batch_size=4, pool=8, pool_augment=["warp"],
                                  loss={"features": 0.5}), StudentSpec(arch="mobile", width=0.25), tiny_context)


def test_stages_train_a_frozen_input_and_leave_it_untouched(tiny_context, tmp_path):
    """Prune and QAT may start from the teacher, which the pipeline freezes and keeps as reference."""
    frozen = copy.deepcopy(tiny_context.teacher)
    for p in frozen.parameters():
        p.requires_grad_(False)
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    cfg = PruneConfig(target={"channel_ratio": 0.75}, steps=1,
                     finetune={"epochs": 1, "steps_per_epoch": 2, "batch_size": 8, "lr": 0.01})
    pruned, _ = run_prune(copy.deepcopy(frozen), cfg, tiny_context)
    assert all(p.requires_grad for p in pruned.parameters())
    assert all(torch.equal(v, before[k]) for k, v in frozen.state_dict().items())


def test_calibration_cache_is_not_reused_after_the_images_change(tiny_context, tmp_path):
    # ORT reuses a calibration cache file blindly; one file name for every input kept the first run's ranges.
    from edgekit.compress.quantize import Int8Builder, calibration_images

    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    images = calibration_images(tiny_context, 40)
    cfg = QuantizeConfig(calibration={"images": 40, "method": "minmax"}, fallback=None)

    def input_scale(calibration, out):
        b = Int8Builder(fp32, tmp_path, cfg, QuantScheme(), calibration)
        model = onnx.load(str(b.build(tmp_path / out)))
        inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
        q = next(n for n in model.graph.node if n.op_type == "QuantizeLinear" and n.input[0] == "image")
        return float(inits[q.input[1]])

    wide = input_scale(images, "a.onnx")
    narrow = input_scale(images * 0.25, "b.onnx")
    assert narrow == pytest.approx(wide * 0.25, rel=0.05)
    assert len(list(tmp_path.glob("calibration.*.json"))) == 1  # the stale cache is removed


def test_code_hash_changes_when_the_source_does(tmp_path):
    import shutil

    import edgekit
    from edgekit.hashing import code_hash, source_hash

    pkg = tmp_path / "edgekit"
    shutil.copytree(Path(edgekit.__file__).parent, pkg, ignore=shutil.ignore_patterns("__pycache__", "zoo"))
    before = source_hash(pkg)
    assert before == code_hash()  # the package's hash is its source's
    (pkg / "metrics.py").write_text((pkg / "metrics.py").read_text() + "\n# an edit\n")
    assert source_hash(pkg) != before and len(before) == 16
