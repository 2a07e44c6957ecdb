"""Pruning and latency targets on tiny configs: MACs, channel and latency targets, the group-by-group trim,
Taylor gradients, and the student width chosen by measured latency."""

import copy

import pytest
import torch

from edgekit.compress.distill import run_distill
from edgekit.compress.prune import run_prune
from edgekit.compress.stages.distill import DistillConfig
from edgekit.compress.stages.prune import PruneConfig
from edgekit.config.recipe import StudentSpec
from edgekit.models.checkpoint import CheckpointMeta, load_checkpoint, save_checkpoint
from edgekit.models.registry import count_macs_params

NAMES = ["landmarks", "states"]


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
    batches = tiny_context.data.train_batches(4, 1)
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
    before = tiny_context.latency.ms(model)
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
    """The search's contract, on the latencies it measured: the chosen width fits, every wider one it tried did
    not, and it bisects (a handful of measurements for 15 widths). Where the choice lands for a given target
    depends on how loaded the machine is while it measures (a neighbouring test worker once moved it from about
    1.0 to 0.625), so that is not asserted here."""
    import math

    from edgekit.compress.distill import WIDTHS
    from edgekit.models.registry import build

    target = tiny_context.latency.ms(build("mobile", width=1.0)) * 1.02
    cfg = DistillConfig(epochs=1, steps_per_epoch=1, batch_size=4)
    student, arch, extra = run_distill(cfg, StudentSpec(latency_ms=target), tiny_context)
    chosen = extra["latency"]["width"]
    assert arch["arch_kwargs"]["width"] == chosen and chosen in WIDTHS
    measured = extra["latency"]["measured_ms"]
    assert measured[chosen] <= target  # the chosen width fits ...
    wider = [w for w in measured if w > chosen]
    assert all(measured[w] > target for w in wider)  # ... and every wider width tried did not
    assert chosen == WIDTHS[-1] or WIDTHS[WIDTHS.index(chosen) + 1] in measured  # the next width up was tried
    assert len(measured) <= math.ceil(math.log2(len(WIDTHS))) + 1  # bisected, not scanned


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
