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
from edgekit.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from edgekit.models.registry import count_macs_params

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
    ctx = copy.copy(tiny_context)
    ctx._cache = {}
    ctx.data = ctx.data.model_copy(update={"train": str(folder), "val": str(folder)})
    cfg = DistillConfig(epochs=1, steps_per_epoch=2, batch_size=8)
    student, _, extra = run_distill(cfg, StudentSpec(arch="mobile", width=0.25), ctx)
    # Against the teacher's own predictions: NME is fidelity, states are the teacher's decisions.
    assert 0 < extra["val"]["nme"] < 1 and extra["val"]["n"] == 12


def test_prune_reaches_the_macs_target_on_channel_multiples_keeping_heads(tiny_context, tmp_path):
    model = copy.deepcopy(tiny_context.teacher).train()
    cfg = PruneConfig(importance="taylor", target={"macs_ratio": 0.7}, steps=2,
                     finetune={"epochs": 1, "steps_per_epoch": 2, "batch_size": 16})
    pruned, extra = run_prune(model, cfg, tiny_context)
    assert extra["macs_after"] <= 0.7 * extra["macs_before"] and extra["params_after"] < extra["params_before"]
    assert not extra["warnings"]
    assert all(c % 8 == 0 for c in extra["channels"])
    steps = [h["step"] for h in extra["history"]]
    assert steps[:2] == [1, 2] and steps[2:] == (["top-up"] if extra["top_up_steps"] else [])
    lm, st = pruned.eval()(torch.zeros(2, 3, 112, 112))
    assert lm.shape == (2, 68, 2) and st.shape == (2, 3)
    # A pruned checkpoint rebuilds from its weights alone.
    path = save_checkpoint(tmp_path / "p.safetensors", pruned,
                           CheckpointMeta(arch="mobile", arch_kwargs={"width": 0.25}, pruned=True))
    again, _ = load_checkpoint(path)
    x = torch.randn(1, 3, 112, 112)
    assert torch.allclose(again(x)[0], pruned(x)[0], atol=1e-6)
    assert count_macs_params(again)[0] == extra["macs_after"]


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
    assert extra["warnings"] and "40 images (< 100)" in extra["warnings"][0]
    assert extra["quantized_layers"] > 0


def test_ort_format_auto_times_qdq_against_qoperator_and_keeps_the_faster(tiny_context, tmp_path):
    from edgekit.compress.quantize import FORMAT_MARGIN

    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None), QuantScheme(),
                         tiny_context, tmp_path)
    fmt = extra["ort_format"]
    assert set(fmt["p50_ms"]) == {"qdq", "qoperator"} and min(fmt["p50_ms"].values()) > 0
    faster = fmt["p50_ms"]["qoperator"] < fmt["p50_ms"]["qdq"] * (1 - FORMAT_MARGIN)
    assert fmt["chosen"] == ("qoperator" if faster else "qdq")
    assert ("QLinearConv" in onnx_ops(out)) == (fmt["chosen"] == "qoperator")  # the file is the chosen form
    assert not (tmp_path / "model.qop.onnx").exists()


def test_forced_qoperator_is_fused_int8_with_the_same_accuracy(tiny_context, tmp_path):
    fp32 = export_onnx(tiny_context.teacher, tmp_path / "m.onnx", (1, 3, 112, 112), NAMES)
    out, extra = run_ptq(fp32, QuantizeConfig(calibration={"images": 40}, fallback=None, ort_format="qoperator"),
                         QuantScheme(), tiny_context, tmp_path)
    ops = onnx_ops(out)
    assert "QLinearConv" in ops and "Conv" not in ops
    nme = extra["ort_format"]["val_nme"]
    assert extra["ort_format"]["chosen"] == "qoperator" and abs(nme["qoperator"] - nme["qdq"]) < 0.1 * nme["qdq"]
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
    assert extra["ort_format"] is None  # TensorRT's scheme stays QDQ


def test_qat_fine_tunes_with_fake_quant_and_exports_qdq(tiny_context, tmp_path):
    cfg = QuantizeConfig(mode="qat", calibration={"images": 40}, qat={"epochs": 1, "steps_per_epoch": 2,
                                                                     "batch_size": 8})
    out, extra = run_qat(copy.deepcopy(tiny_context.teacher), cfg, QuantScheme(), tiny_context, tmp_path, {})
    assert "QuantizeLinear" in onnx_ops(out)
    assert extra["qat"]["history"] and extra["qat"]["val_nme_fake_quant"] > 0


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


@pytest.mark.parametrize("steps, macs_ratio", [(1, 0.5), (2, 0.3), (4, 0.25), (6, 0.4)])
def test_prune_lands_within_five_percent_of_the_macs_target(tiny_context, steps, macs_ratio):
    # Each step bisects its own share on the current model, so the end point is measured, never overshot.
    from edgekit.models.registry import build, count_macs_params

    model = build("mobile", width=1.0)
    macs0 = count_macs_params(model, 112)[0]
    cfg = PruneConfig(target={"macs_ratio": macs_ratio}, steps=steps, channel_multiple=8,
                     finetune={"epochs": 1, "steps_per_epoch": 1, "batch_size": 4})
    _, extra = run_prune(model, cfg, tiny_context)
    target = macs_ratio * macs0
    assert 0.95 * target <= extra["macs_after"] <= target, (extra["macs_after"] / macs0, extra["history"])
    per_step = [h["macs"] for h in extra["history"] if h["step"] != "top-up"]
    goals = [macs0 * macs_ratio ** ((i + 1) / steps) for i in range(steps)]
    assert all(m <= g for m, g in zip(per_step, goals, strict=True))  # no step goes past its own goal


def test_macs_per_channel_matches_the_saving_torch_pruning_measures():
    # fine_trim ranks groups by importance per MAC saved, so the estimate must hold for every kind of group:
    # depthwise chains (one layer, in and out), residual pairs, and the flattened map feeding the landmark FC.
    import torch_pruning as tp

    from edgekit.compress.prune import head_layers, layer_macs, macs_per_channel
    from edgekit.models.registry import build

    model = build("mobile", width=0.5)
    example = torch.zeros(1, 3, 112, 112)
    base = count_macs_params(model, 112)[0]
    n_groups = len(list(tp.DependencyGraph().build_dependency(model, example_inputs=example)
                        .get_all_groups(ignored_layers=head_layers(model))))
    assert n_groups > 10
    for k in range(n_groups):
        trial = copy.deepcopy(model)
        graph = tp.DependencyGraph().build_dependency(trial, example_inputs=example)
        group = list(graph.get_all_groups(ignored_layers=head_layers(trial)))[k]
        estimate = macs_per_channel(group, layer_macs(trial, 112)) * 4
        group.prune(idxs=[0, 1, 2, 3])
        measured = base - count_macs_params(trial, 112)[0]
        # torch-pruning's counter adds BN and activation element ops, which the estimate leaves out
        assert estimate <= measured <= 1.3 * estimate, (k, estimate, measured)


def test_taylor_fine_trim_refreshes_gradients_and_meets_the_target(tiny_context):
    from edgekit.compress.prune import _accumulate_gradients, fine_trim
    from edgekit.models.registry import build
    from edgekit.train.kd import kd_step

    model = build("mobile", width=0.5).train()
    reference = copy.deepcopy(model).eval()
    cfg = PruneConfig(importance="taylor", target={"macs_ratio": 0.8}, channel_multiple=8)
    step = kd_step(reference, cfg.loss, 112.0)
    batches = tiny_context.train_batches(4, 1)
    calls = []

    def gradients(k):
        calls.append(k)
        _accumulate_gradients(model, step, batches(k))

    macs0 = count_macs_params(model, 112)[0]
    rounds = fine_trim(model, cfg, 0.8 * macs0, 8, 112, gradients=gradients)
    assert calls == list(range(rounds)) and rounds > 0  # fresh gradients before every cut
    assert 0.78 * macs0 <= count_macs_params(model, 112)[0] <= 0.8 * macs0
    assert all(p.grad is None for p in model.parameters())  # no stale gradient leaks into fine-tuning


def test_latency_table_measures_each_structure_once_and_is_reused(tmp_path, caplog):
    from edgekit.compress.latency_table import LatencyTable
    from edgekit.models.registry import build

    shape, names = (1, 3, 112, 112), NAMES
    table = LatencyTable.open(tmp_path)
    first = table.latency_ms(build("mobile", width=0.5), shape, names)
    assert first > 0 and table.measured == 1
    # other weights, same structure: read back, not measured
    assert table.latency_ms(build("mobile", width=0.5), shape, names) == pytest.approx(first, abs=1e-4)
    assert (table.measured, table.hits) == (1, 1)
    table.latency_ms(build("mobile", width=0.75), shape, names)
    assert table.measured == 2
    # a later process reads the file; another thread count is another table
    again = LatencyTable.open(tmp_path)
    assert again.latency_ms(build("mobile", width=0.5), shape, names) == pytest.approx(first, abs=1e-4)
    assert (again.measured, again.hits) == (0, 1)
    assert LatencyTable.open(tmp_path, threads=2).path != again.path
    # a broken file is measured afresh with a warning, never trusted
    again.path.write_text("{not json")
    broken = LatencyTable.open(tmp_path)
    assert broken.entries == {} and "unreadable" in caplog.text


def test_prune_to_a_measured_latency(tiny_context):
    from edgekit.models.registry import build

    model = build("mobile", width=1.0)
    macs0 = count_macs_params(model, 112)[0]
    before = tiny_context.latency_ms(model)
    # 0.8, not lower: a runtime floor of fixed per-call cost sits near 0.65 of this model's latency on some hosts
    cfg = PruneConfig(target={"latency_ms": 0.8 * before}, steps=1, channel_multiple=8,
                      finetune={"epochs": 1, "steps_per_epoch": 1, "batch_size": 4})
    _, extra = run_prune(model, cfg, tiny_context)
    latency = extra["latency"]
    assert latency["before_ms"] == pytest.approx(before, abs=1e-4)  # the table's figure, not a second timing
    # How many MACs a latency costs is the host's business (on a Zen 3 VM, 0.99 of the MACs already measured
    # under 0.8x: ONNX Runtime's kernels favour some channel counts), so only the contract is asserted here.
    assert 0 < latency["macs_ratio"] <= 1 and extra["macs_after"] <= macs0
    # Measured again after pruning (a timing, not compared with `before` here: two timings on a shared machine
    # can land either way; benchmarks/ measures speed), and either under the target or named as a miss.
    assert latency["after_ms"] > 0 and latency["after_ms"] != latency["before_ms"]
    assert latency["after_ms"] <= cfg.target.latency_ms or any("over its" in w for w in extra["warnings"])


def test_prune_to_a_latency_already_met_prunes_nothing(tiny_context):
    from edgekit.models.registry import build

    model = build("mobile", width=0.5)
    cfg = PruneConfig(target={"latency_ms": 1000.0})
    pruned, extra = run_prune(model, cfg, tiny_context)
    assert extra["macs_after"] == extra["macs_before"] and "nothing pruned" in extra["warnings"][0]


def test_student_width_chosen_by_measured_latency(tiny_context):
    from edgekit.compress.distill import WIDTHS
    from edgekit.models.registry import build

    target = tiny_context.latency_ms(build("mobile", width=1.0)) * 1.02
    cfg = DistillConfig(epochs=1, steps_per_epoch=1, batch_size=4)
    student, arch, extra = run_distill(cfg, StudentSpec(latency_ms=target), tiny_context)
    chosen = extra["latency"]["width"]
    assert arch["arch_kwargs"]["width"] == chosen and chosen in WIDTHS
    measured = extra["latency"]["measured_ms"]
    assert measured[chosen] <= target  # the chosen width fits ...
    wider = [w for w in measured if w > chosen]
    assert all(measured[w] > target for w in wider)  # ... and every wider width tried did not
    assert 0.75 <= chosen <= 1.25  # the width measured at the target lies near 1.0 (noise allowed)


def test_student_latency_target_excludes_width_and_init():
    with pytest.raises(ValueError, match="latency_ms chooses the width"):
        StudentSpec(latency_ms=1.0, width=0.5)
    with pytest.raises(ValueError, match="latency_ms chooses the width"):
        StudentSpec(latency_ms=1.0, init="zoo:facial68-student-w075")


def test_prune_to_an_unreachable_latency_is_one_clear_error(tiny_context):
    from edgekit.errors import EdgekitError
    from edgekit.models.registry import build

    cfg = PruneConfig(target={"latency_ms": 1e-4})
    with pytest.raises(EdgekitError, match="latency_ms 0.0001: even at .* raise the target"):
        run_prune(build("mobile", width=0.5), cfg, tiny_context)


def test_fine_trim_spreads_a_cut_no_group_loses_more_than_max_step_cut():
    from edgekit.compress.prune import fine_trim
    from edgekit.models.registry import build
    from edgekit.models.resize import channel_summary

    model = build("mobile", width=1.0)
    before = channel_summary(model)
    macs0 = count_macs_params(model, 112)[0]
    cfg = PruneConfig(target={"macs_ratio": 0.8}, channel_multiple=8, max_step_cut=0.25)
    fine_trim(model, cfg, 0.8 * macs0, 8, 112)
    after = channel_summary(model)
    assert count_macs_params(model, 112)[0] <= 0.8 * macs0
    assert all(a >= 0.75 * b for a, b in zip(after, before, strict=True)), (before, after)
    assert after[0] == before[0] == 16  # the 16-channel stem cannot lose 8 channels (50%) under a 25% cap
