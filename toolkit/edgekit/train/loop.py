"""One training loop for teacher training, distillation, fine-tuning and QAT.

AdamW, linear warm-up then cosine decay (torch's schedulers), early stopping on validation NME, the best
weights kept in memory, and a rich progress bar showing loss and NME. With `state_path`, the whole loop state is
saved after every epoch and a rerun with `resume=True` continues after the last finished epoch.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch import nn

from . import distributed
from .memory_format import training_format
from .resume import LoopState, load_state, save_state


@dataclass
class FitConfig:
    epochs: int = 30
    steps_per_epoch: int = 200
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_epochs: float = 1.0
    patience: int = 6  # epochs without a validation-NME improvement before stopping
    seed: int = 0
    channels_last: bool = True  # ~10% faster convolutions on CPU (oneDNN); see memory_format.py for the exception


def fit_config(spec, seed: int) -> FitConfig:
    """The loop settings of a recipe's training spec (epochs, steps, lr, patience): a stage's fine-tuning."""
    return FitConfig(epochs=spec.epochs, steps_per_epoch=spec.steps_per_epoch, lr=spec.lr, patience=spec.patience,
                     seed=seed, warmup_epochs=min(1.0, spec.epochs / 4))


@dataclass
class FitResult:
    best_metrics: dict
    best_epoch: int
    history: list[dict] = field(default_factory=list)
    wall_s: float = 0.0
    stopped_early: bool = False


def _scheduler(opt: torch.optim.Optimizer, cfg: FitConfig):
    total = cfg.epochs * cfg.steps_per_epoch
    warm = max(1, int(cfg.warmup_epochs * cfg.steps_per_epoch))
    return torch.optim.lr_scheduler.SequentialLR(
        opt,
        [
            torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.01, total_iters=warm),
            torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, total - warm), eta_min=cfg.lr * 0.01),
        ],
        milestones=[warm],
    )


def fit(
    model: nn.Module,
    cfg: FitConfig,
    train_batches: Callable[[int], Iterable],
    step_loss: Callable[[nn.Module, object], tuple[torch.Tensor, dict]],
    validate: Callable[[nn.Module], dict],
    description: str = "train",
    progress: bool = True,
    params: Iterable[torch.nn.Parameter] | None = None,
    state_path: Path | None = None,
    resume: bool = False,
    settings: dict | None = None,
) -> FitResult:
    """Train `model` in place, leaving it at its best-validation weights.

    train_batches(epoch) yields that epoch's batches (under torchrun: this rank's share of each global
    batch); step_loss(model, batch) returns (loss, logs);
    validate(model) returns metrics with an "nme" key (lower is better). `settings`: everything else that shapes
    the run (loss, data, batch size...); a resume refuses a state written under other settings or `cfg`.
    """
    resume_config = {"fit": asdict(cfg), "settings": settings or {}}
    world = distributed.init()  # under torchrun: N ranks, each on its shard; else one process
    torch.manual_seed(cfg.seed)
    model.to(memory_format=training_format(model, cfg.channels_last))
    trained = distributed.wrap(model, world)  # what the steps call: DDP with synchronised BatchNorm, or the model
    params = list(params) if params is not None else None
    own = {id(p) for p in model.parameters()}
    outside = [p for p in params if id(p) not in own] if params is not None else []  # not averaged by DDP
    opt = torch.optim.AdamW(params if params is not None else model.parameters(), lr=cfg.lr,
                            weight_decay=cfg.weight_decay)
    sched = _scheduler(opt, cfg)
    best, best_state, best_epoch, bad = math.inf, None, -1, 0
    result = FitResult(best_metrics={}, best_epoch=-1)
    first_epoch = 0
    if resume and state_path is not None and Path(state_path).exists():
        loop, best_state = load_state(Path(state_path), resume_config, model, opt, sched)
        best, best_epoch, bad, first_epoch = loop.best, loop.best_epoch, loop.bad, loop.epoch
        result.history = loop.history
        best_row = next((h for h in loop.history if h["epoch"] == best_epoch), {})
        result.best_metrics = {k: v for k, v in best_row.items() if k not in ("epoch", "loss")}
    start = time.perf_counter()
    columns = [TextColumn("[bold]{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
               TextColumn("{task.fields[status]}"), TimeElapsedColumn(), TimeRemainingColumn()]
    progress = progress and world.main  # one bar and one log, on rank 0
    with Progress(*columns, disable=not progress, transient=False) as bar:
        task = bar.add_task(description, total=cfg.epochs * cfg.steps_per_epoch, status="",
                            completed=first_epoch * cfg.steps_per_epoch)
        last = first_epoch if bad >= cfg.patience else cfg.epochs  # a resumed run may have stopped early already
        for epoch in range(first_epoch, last):
            trained.train()
            running, n = 0.0, 0
            for step, batch in enumerate(train_batches(epoch)):
                if step >= cfg.steps_per_epoch:
                    break
                loss, logs = step_loss(trained, batch)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                distributed.average_grads(outside, world)
                opt.step()
                sched.step()
                running, n = running + loss.item(), n + 1
                best_txt = f" (best val NME {100 * best:.2f}%)" if best < math.inf else ""
                bar.update(task, advance=1, status=f"epoch {epoch + 1} loss {running / n:.4f}{best_txt}")
            model.eval()
            with torch.no_grad():
                metrics = validate(model)
            # Every rank holds the same weights; rank 0's figure decides, so early stopping agrees everywhere.
            metrics["nme"] = distributed.all_ranks_agree(metrics["nme"], world)
            result.history.append({"epoch": epoch + 1, "loss": running / max(n, 1), **metrics})
            if metrics["nme"] < best:
                best, best_epoch, bad = metrics["nme"], epoch + 1, 0
                best_state = copy.deepcopy(model.state_dict())
                result.best_metrics = metrics
            else:
                bad += 1
            summary = (f"epoch {epoch + 1}/{cfg.epochs} loss {running / max(n, 1):.4f} "
                       f"val NME {100 * metrics['nme']:.2f}% (best {100 * best:.2f}%, epoch {best_epoch})")
            bar.update(task, status=summary)
            if progress:
                bar.console.log(summary)
            if state_path is not None and world.main:
                save_state(Path(state_path), resume_config,
                           LoopState(epoch + 1, best, best_epoch, bad, result.history), model, best_state, opt, sched)
            if bad >= cfg.patience:
                result.stopped_early = True
                bar.update(task, completed=cfg.epochs * cfg.steps_per_epoch)
                break
    distributed.unwrap(model, world)
    if best_state is not None:
        model.load_state_dict(best_state)
    model.to(memory_format=torch.contiguous_format)
    model.eval()
    result.best_epoch, result.wall_s = best_epoch, time.perf_counter() - start
    return result
