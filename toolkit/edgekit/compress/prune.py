"""Structured pruning stage with torch-pruning (DepGraph): remove whole channels, keep every head's shape.

The target is a MACs ratio, a channel ratio or a latency measured here (`latency_ms`, through the latency table:
turned into a MACs ratio by bisection, then checked again on the result), reached in `steps` iterative steps
with KD fine-tuning from the unpruned model between them. Channel counts round to the target's
`channel_multiple`.

A MACs target is met step by step: step i aims at macs0 * ratio^((i+1)/steps) (geometric, so each step removes
the same share of what is left), and the channel ratio that lands there is bisected on the *current* model. The
result is measured, not predicted from a channel schedule, so no step can overshoot: a schedule set up once
before fine-tuning was seen to cut a teacher to 3.5% of its MACs against a 25% target.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING

import torch
import torch_pruning as tp
from torch import nn

from ..errors import EdgekitError
from ..models.registry import count_macs_params
from ..models.resize import channel_summary
from ..train import distributed
from ..train.kd import kd_step
from ..train.loop import fit, fit_config
from .context import StageContext
from .importance import criterion

if TYPE_CHECKING:  # annotations only: the stage file imports this module to run it
    from .stages.prune import PruneConfig


def head_layers(model: nn.Module, size: int | None = None) -> list[nn.Module]:
    """Every layer of the task head keeps its output channels. The last ones are the model's outputs; the landmark
    branch's channel reduction and hidden layer cost under 1% of the MACs but are the bottleneck every landmark
    passes through: pruning them took a width-0.75 student from 2.95% to 3.77% NME for 20% of its MACs
    (benchmarks/RESULTS.md). The backbone channels feeding the head stay prunable."""
    head = getattr(model, "head", None)
    if head is None:
        return output_layers(model, (1, 3, size, size) if size else None) + [m for _, m in unknown_layers(model)]
    return [m for m in head.modules() if isinstance(m, nn.Conv2d | nn.Linear)]


_PARAMETRIC = (nn.Conv2d, nn.Linear, nn.ConvTranspose2d)


def unknown_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Modules of your own that hold parameters but that torch-pruning has no rule for (it would guess which axis
    is the channel): they are kept whole, and so are the channels coupled to them."""
    return [(name, m) for name, m in model.named_modules()
            if any(True for _ in m.parameters(recurse=False))
            and tp.ops.module2type(m) == tp.ops.OPTYPE.ELEMENTWISE]


def output_layers(model: nn.Module, shape: tuple[int, ...] | None) -> list[nn.Module]:
    """Your own model has no `head`: keep the last Conv/Linear on every path to an output, so no output changes
    shape. Found by walking the autograd graph back from each output until a layer's own output is reached."""
    if shape is None:
        return []
    made: dict = {}

    def record(mod, _inputs, out) -> None:  # returns None: a forward hook's return value replaces the output
        made.setdefault(out.grad_fn, mod)

    hooks = [m.register_forward_hook(record) for m in model.modules() if isinstance(m, _PARAMETRIC)]
    try:
        with torch.enable_grad():
            out = model(torch.zeros(*shape))
    finally:
        for h in hooks:
            h.remove()
    outs = [out] if isinstance(out, torch.Tensor) else list(out.values() if isinstance(out, dict) else out)
    found, seen = [], set()
    stack = [t.grad_fn for t in outs if t.grad_fn is not None]
    while stack:
        fn = stack.pop()
        if fn is None or fn in seen:
            continue
        seen.add(fn)
        if fn in made:
            if made[fn] not in found:
                found.append(made[fn])
            continue
        stack.extend(f for f, _ in fn.next_functions)
    return found


def make_pruner(model: nn.Module, cfg: PruneConfig, ratio: float, steps: int, multiple: int, size: int,
                gradients: bool = True):
    """steps == 0 means one-shot. Without gradients (the bisection's trial copies) a gradient criterion falls back
    to its stand-in (Taylor: L2)."""
    return tp.pruner.MetaPruner(
        model,
        torch.zeros(1, 3, size, size),
        importance=criterion(cfg.importance).importance(gradients),
        pruning_ratio=ratio,
        iterative_steps=max(1, steps),
        ignored_layers=head_layers(model, size),
        round_to=multiple,
    )


def ratio_for_macs(model: nn.Module, cfg: PruneConfig, target_macs: float, multiple: int, size: int,
                   above: bool = False) -> float:
    """Bisect the channel pruning ratio whose one-shot result lands at or just under the MACs target (or, with
    `above`, the largest ratio that stays just over it)."""
    lo, hi = 0.0, 0.95
    for _ in range(12):
        mid = (lo + hi) / 2
        trial = copy.deepcopy(model)
        make_pruner(trial, cfg, mid, 0, multiple, size, gradients=False).step()
        if count_macs_params(trial, size)[0] > target_macs:
            lo = mid
        else:
            hi = mid
    return lo if above else hi


def layer_macs(model: nn.Module, size: int) -> dict[nn.Module, int]:
    """MACs of each conv and linear layer in one batch-1 forward (hooks read the output's spatial size)."""
    macs: dict[nn.Module, int] = {}

    def hook(module, _inputs, output):
        if isinstance(module, nn.Conv2d):
            kh, kw = module.kernel_size
            per_pixel = module.out_channels * module.in_channels // module.groups * kh * kw
            macs[module] = per_pixel * output.shape[-1] * output.shape[-2]
        else:
            macs[module] = module.in_features * module.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    model.train(was_training)
    for h in handles:
        h.remove()
    return macs


def macs_per_channel(group, macs: dict[nn.Module, int]) -> float:
    """MACs saved by removing one channel of a group: each layer it touches loses its MACs per output (or
    input) channel, scaled by how many indices one group channel is there (a flattened map feeds a linear
    layer `spatial` inputs per channel)."""
    items = list(group.items)
    root = max(1, len(items[0][1]))
    saved: dict[nn.Module, float] = {}
    for dep, idxs in items:
        module = dep.target.module
        if module not in macs:
            continue
        out = dep.handler.__name__ == "prune_out_channels"
        width = (module.out_channels if out else module.in_channels) if isinstance(module, nn.Conv2d) \
            else (module.out_features if out else module.in_features)
        # a layer can appear twice in one group (a depthwise conv's in and out): count it once
        saved[module] = max(saved.get(module, 0.0), macs[module] / width * len(idxs) / root)
    return sum(saved.values())


OVERSHOOT = 0.02  # fine_trim's tolerance under a MACs target


def fine_trim(model: nn.Module, cfg: PruneConfig, target_macs: float, multiple: int, size: int,
              gradients=None, max_rounds: int = 200) -> int:
    """Remove `multiple` channels at a time from the group where they cost least, until the MACs target holds.
    With Taylor importance (and `gradients`), the cost is the weakest channels' summed score per share of the MACs
    they carry; with magnitudes, their score relative to their group's mean. A uniform ratio moves MACs in jumps
    of 10% or more once channel counts round to a multiple; one group at a time lands within a few percent of the
    target. Ranked within groups only, a converged student (flat importances everywhere) lost its last block's
    channels 72 -> 16, where each channel saves little, and went from 2.4% to 25.7% NME for 5% of its MACs."""
    crit = criterion(cfg.importance)
    # Scores comparable across groups (Taylor's, summed and unnormalised) rank cuts per MAC; others within a group.
    across = crit.across_groups(gradients is not None)
    comparable = across is not None
    imp = across or crit.importance(gradients is not None)
    example = torch.zeros(1, 3, size, size)
    ignored = head_layers(model, size)
    rounds, first_seen = 0, {}  # a group's channel count when this call first saw it, by its root layer
    while (total := count_macs_params(model, size)[0]) > target_macs and rounds < max_rounds:
        if comparable:
            gradients(rounds)
        graph = tp.DependencyGraph().build_dependency(model, example_inputs=example)
        macs = layer_macs(model, size)
        candidates = []
        for group in graph.get_all_groups(ignored_layers=ignored):
            scores = imp(group)
            if scores is None or len(scores) < 2 * multiple:
                continue
            start = first_seen.setdefault(group.items[0][0].target.module, len(scores))
            if start - len(scores) + multiple > cfg.max_step_cut * start:
                continue  # first-order scores miss what halving a thin early layer costs: spread the cut
            weakest = torch.argsort(scores)[:multiple]
            saved = macs_per_channel(group, macs) * multiple
            if saved <= 0:
                continue
            if comparable:  # an estimate of the loss each channel carries: comparable across groups, so per MAC
                cost = float(scores[weakest].sum()) / (saved / total)
            else:  # magnitudes compare within a group only; per MAC they steered the teacher's prune into its
                # high-resolution layers (prune_int8: 2.71% against 2.51% ranked within groups)
                cost = float(scores[weakest].mean() / (scores.mean() + 1e-12))
            # a cut that lands more than 2% under the target is taken only when nothing smaller is left
            overshoot = total - saved < target_macs * (1 - OVERSHOOT)
            candidates.append((overshoot, cost, group, weakest.tolist()))
        if not candidates:
            break
        _, _, group, idxs = min(candidates, key=lambda c: (c[0], c[1]))
        group.prune(idxs=idxs)
        model.zero_grad()
        rounds += 1
    return rounds


def _accumulate_gradients(model: nn.Module, step, batches) -> None:
    model.zero_grad()
    for i, batch in enumerate(batches):
        if i >= 4:
            break
        step(model, batch)[0].backward()


def _top_up(model: nn.Module, cfg: PruneConfig, target: float, multiple: int, size: int, step, batches) -> int:
    """Scheduled steps choose channels by the real importance, which can land above a MACs target found with a
    proxy; prune small one-shot increments with the same importance until the target holds (the target is a
    promise, not a hint)."""
    done, ratio = 0, 0.05
    while count_macs_params(model, size)[0] > target and done < 20:
        before = count_macs_params(model, size)[0]
        if criterion(cfg.importance).needs_gradients:
            _accumulate_gradients(model, step, batches(20_000 + done))
        make_pruner(model, cfg, ratio, 0, multiple, size).step()
        model.zero_grad()
        done += 1
        if count_macs_params(model, size)[0] >= before:  # rounding swallowed the increment: ask for more
            ratio = min(0.5, ratio * 2)
    return done


def macs_ratio_for_latency(model: nn.Module, cfg: PruneConfig, ctx: StageContext, multiple: int) -> float:
    """The largest MACs ratio whose one-shot prune measures at or under the latency target (bisected over the
    latency table; weights do not matter for latency, so the trial copies are pruned by magnitude)."""
    size, macs0, target = ctx.input_size, count_macs_params(model, ctx.input_size)[0], cfg.target.latency_ms

    def measured_at(ratio: float) -> float:
        trial = copy.deepcopy(model)
        make_pruner(trial, cfg, ratio_for_macs(trial, cfg, ratio * macs0, multiple, size), 0, multiple, size,
                    gradients=False).step()
        fine_trim(trial, cfg, ratio * macs0, multiple, size)
        return ctx.latency.ms(trial)

    lo, hi, best = 0.02, 1.0, None
    for _ in range(7):
        mid = (lo + hi) / 2
        if measured_at(mid) <= target:
            lo, best = mid, mid
            continue
        hi = mid
        if best is None:  # nothing met yet: can the smallest model meet the target at all?
            floor = measured_at(lo)
            if floor > target:  # runtime overhead, not channels, sets the floor: pruning cannot get there
                raise EdgekitError(f"prune.target.latency_ms {target}: even at {lo:.3f} of its MACs the model "
                                   f"measures {floor:.3f} ms here (ONNX Runtime, FP32, 1 thread); raise the target")
            best = lo
    return best


def run_prune(model: nn.Module, cfg: PruneConfig, ctx: StageContext):
    size = ctx.input_size
    multiple = cfg.channel_multiple or ctx.channel_multiple
    macs0, params0 = count_macs_params(model, size)
    latency: dict | None = None
    skipped = [f"prune: torch-pruning has no rule for {type(m).__name__} ({name}); it and the channels coupled to "
               "it are kept" for name, m in unknown_layers(model)] if getattr(model, "head", None) is None else []
    macs_ratio = cfg.target.macs_ratio
    if cfg.target.latency_ms is not None:  # a measured latency becomes a MACs ratio, checked again at the end
        latency = {"target_ms": cfg.target.latency_ms, "before_ms": round(ctx.latency.ms(model), 4)}
        if latency["before_ms"] <= cfg.target.latency_ms:
            extra = {"importance": cfg.importance, "macs_before": macs0, "macs_after": macs0, "latency": latency,
                     "params_before": params0, "params_after": params0, "channels": channel_summary(model),
                     "warnings": [f"the model already measures {latency['before_ms']:.3f} ms, within the "
                                  f"{cfg.target.latency_ms} ms target: nothing pruned"]}
            return model, extra
        macs_ratio = macs_ratio_for_latency(model, cfg, ctx, multiple)
        latency["macs_ratio"] = round(macs_ratio, 4)
    reference = copy.deepcopy(model).eval()  # KD teacher for recovery: the unpruned model
    for p in reference.parameters():
        p.requires_grad_(False)
    by_macs = macs_ratio is not None
    ratio = 1.0 - cfg.target.channel_ratio if not by_macs else None
    model.train()
    for p in model.parameters():  # the input may come frozen (a teacher); fine-tuning must train it
        p.requires_grad_(True)
    pruner = None if by_macs else make_pruner(model, cfg, ratio, cfg.steps, multiple, size)
    step = kd_step(reference, cfg.loss, float(size), view=ctx.canonical)
    batches = ctx.data.train_batches(cfg.finetune.batch_size, cfg.finetune.steps_per_epoch)
    # Importance is computed whole on every rank (the same channels go everywhere); fine-tuning takes its share.
    ft_batches = ctx.data.train_batches(cfg.finetune.batch_size, cfg.finetune.steps_per_epoch, distributed.init())
    history, step_ratios = [], []
    for i in range(cfg.steps):
        if by_macs:  # this step's share of the MACs target: a uniform ratio to just above it, then group by group
            goal = macs0 * macs_ratio ** ((i + 1) / cfg.steps)
            r = ratio_for_macs(model, cfg, goal, multiple, size, above=True)
            step_ratios.append(round(r, 4))
        if criterion(cfg.importance).needs_gradients:
            _accumulate_gradients(model, step, batches(10_000 + i))
        if by_macs:
            if r > 0:
                make_pruner(model, cfg, r, 0, multiple, size).step()
            fine_trim(model, cfg, goal, multiple, size,
                      gradients=lambda k, i=i: _accumulate_gradients(model, step, batches(30_000 + 100 * i + k)))
        else:
            pruner.step()
        model.zero_grad()
        ft = fit_config(cfg.finetune, ctx.seed + i)
        result = fit(model, ft, lambda e, i=i: ft_batches(100 * (i + 1) + e), step, ctx.scoring.validate,
                     description=f"prune {i + 1}/{cfg.steps}", progress=ctx.progress)
        macs, params = count_macs_params(model, size)
        history.append({"step": i + 1, "macs": macs, "params": params, "val_nme": result.best_metrics["nme"]})
    target = macs_ratio * macs0 if by_macs else None
    if latency is not None:  # the scheduled structure differs from the trial's: measure it, trim more if slow
        measured = ctx.latency.ms(model)
        if measured > cfg.target.latency_ms:
            target = min(target, count_macs_params(model, size)[0] * cfg.target.latency_ms / measured)
    top_ups = _top_up(model, cfg, target, multiple, size, step, batches) if target is not None else 0
    if top_ups:
        ft = fit_config(cfg.finetune, ctx.seed + cfg.steps)
        result = fit(model, ft, lambda e: ft_batches(100 * (cfg.steps + 1) + e), step, ctx.scoring.validate,
                     description="prune top-up", progress=ctx.progress)
        macs, params = count_macs_params(model, size)
        history.append({"step": "top-up", "macs": macs, "params": params, "val_nme": result.best_metrics["nme"]})
    macs1, params1 = count_macs_params(model, size)
    warnings_ = list(skipped)
    if target is not None and macs1 > target:  # every prunable group is at its channel floor
        warnings_.append(f"prune reached {macs1 / macs0:.3f} of the MACs, not the {target / macs0:.3f} asked for: "
                         f"the layers left are at {multiple} channels or belong to the head")
    if latency is not None:
        latency["after_ms"] = round(ctx.latency.ms(model), 4)
        if latency["after_ms"] > cfg.target.latency_ms:
            warnings_.append(f"prune measured {latency['after_ms']:.3f} ms after pruning, over its "
                             f"{cfg.target.latency_ms} ms target")
    extra = {
        "importance": cfg.importance,
        "channel_multiple": multiple,
        "pruning_ratio": round(ratio, 4) if ratio is not None else step_ratios,
        "macs_before": macs0,
        "macs_after": macs1,
        "params_before": params0,
        "params_after": params1,
        "channels": channel_summary(model),
        "top_up_steps": top_ups,
        "history": history,
        "warnings": warnings_,
    }
    if latency is not None:
        extra["latency"] = latency
    return model, extra
