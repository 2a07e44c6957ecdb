"""Data-parallel training under `torchrun`: the same loop, the same recipe, on N processes.

`torchrun --nproc-per-node N -m edgekit teacher train ...` (or `edgekit ... --nproc N`, which starts torchrun)
sets RANK, WORLD_SIZE and the rendezvous in the environment; everything here reads it, so one process without
torchrun is the ordinary single-process run. Backends: gloo on CPU, NCCL on GPU. Each rank trains on its own
shard of every epoch's batches (DistributedSampler, no shuffling of an already seeded stream), the global batch
is the recipe's batch split evenly across ranks, gradients are averaged by DistributedDataParallel, and
BatchNorm statistics are synchronised across ranks (SyncBatchNorm on GPU, `AllReduceBatchNorm2d` on CPU) so the
model sees the statistics of the global batch, as the single-process run does. Only rank 0 writes files and
draws progress.
"""

from __future__ import annotations

import json
import os
import warnings
from dataclasses import dataclass
from datetime import timedelta

import torch
from torch import nn

# The autograd-aware all_reduce is marked deprecated in favour of a private module; it is still the public one.
warnings.filterwarnings("ignore", message="torch.distributed.nn.functional.all_reduce is deprecated")
# A collective that waits longer than this (a rank died or hung) raises instead of hanging the job.
TIMEOUT_S = float(os.environ.get("EDGEKIT_DIST_TIMEOUT_S", "120"))


@dataclass(frozen=True)
class World:
    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def world() -> World:
    """This process's place in the job, from torchrun's environment (a single process without it)."""
    return World(int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1)),
                 int(os.environ.get("LOCAL_RANK", 0)))


def init() -> World:
    """Join the process group once (gloo on CPU, NCCL on GPU) when started by torchrun; a no-op otherwise."""
    w = world()
    if w.distributed and not torch.distributed.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(w.local_rank)
        torch.distributed.init_process_group(backend, timeout=timedelta(seconds=TIMEOUT_S))
    return w


def per_rank_batch(global_batch: int, w: World) -> int:
    if global_batch % w.size:
        from ..errors import EdgekitError

        raise EdgekitError(f"batch size {global_batch} does not split evenly across {w.size} processes; use a "
                           f"multiple of {w.size}")
    return global_batch // w.size


def sampler(dataset, w: World):
    """Rank r takes items r, r + N, r + 2N, ... of the epoch: the ranks' batches together are the single-process
    run's batch, item for item (the stream itself is already seeded per epoch)."""
    from torch.utils.data import DistributedSampler

    return DistributedSampler(dataset, num_replicas=w.size, rank=w.rank, shuffle=False, drop_last=True)


class AllReduceBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm over the global batch on CPU: torch's SyncBatchNorm runs on GPUs only, so on gloo each rank
    sums its per-channel count, sum and sum of squares and all-reduces them (autograd flows through
    `torch.distributed.nn.functional.all_reduce`). In eval mode, or outside a process group, it is BatchNorm2d."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not (self.training and torch.distributed.is_available() and torch.distributed.is_initialized()):
            return super().forward(x)
        from torch.distributed.nn.functional import all_reduce

        c = x.shape[1]
        local = torch.cat([x.sum(dim=(0, 2, 3)), (x * x).sum(dim=(0, 2, 3)),
                           x.new_full((1,), x.numel() / c)])
        total = all_reduce(local)
        n = total[-1]
        mean = total[:c] / n
        var = total[c:2 * c] / n - mean * mean
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * n / (n - 1), alpha=m)
        y = (x - mean[None, :, None, None]) * torch.rsqrt(var + self.eps)[None, :, None, None]
        return y * self.weight[None, :, None, None] + self.bias[None, :, None, None] if self.affine else y


def _sync_class() -> type[nn.BatchNorm2d]:
    return nn.SyncBatchNorm if torch.cuda.is_available() else AllReduceBatchNorm2d


def wrap(model: nn.Module, w: World) -> nn.Module:
    """The module the training steps call: the model itself, or (distributed) the model with synchronised
    BatchNorm layers in place (sharing its parameters and buffers, so the optimizer is unchanged) inside DDP."""
    if not w.distributed:
        return model
    _swap_batchnorm(model, nn.BatchNorm2d, _sync_class())
    device_ids = [w.local_rank] if torch.cuda.is_available() else None
    return nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: nn.Module, w: World) -> None:
    """Undo `wrap` on the model: plain BatchNorm2d again (export and inference know nothing of process groups)."""
    if w.distributed:
        _swap_batchnorm(model, _sync_class(), nn.BatchNorm2d)


def _swap_batchnorm(module: nn.Module, source: type, target: type) -> None:
    """Replace every layer of exactly `source` by `target` in place, keeping the same Parameter and buffer
    objects. By hand because torch converts one way only (`SyncBatchNorm.convert_sync_batchnorm`)."""
    for name, child in module.named_children():
        if type(child) is source:
            new = target(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight, new.bias = child.weight, child.bias
            new.running_mean, new.running_var = child.running_mean, child.running_var
            new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            _swap_batchnorm(child, source, target)


def all_ranks_agree(value: float, w: World) -> float:
    """Rank 0's value on every rank (validation metrics, so early stopping decides the same everywhere)."""
    if not w.distributed:
        return value
    t = torch.tensor([value], dtype=torch.float64)
    torch.distributed.broadcast(t, src=0)
    return float(t.item())


def from_main(value, w: World):
    """Rank 0's JSON-able `value` on every rank (the compress pipeline's cache decisions and stage records). Sent
    as a JSON string: torch pickles what it broadcasts, so only a string we made ourselves travels."""
    if not w.distributed:
        return value
    box = [json.dumps(value) if w.main else None]
    torch.distributed.broadcast_object_list(box, src=0)
    return json.loads(box[0])


def average_grads(params, w: World) -> None:
    """Average gradients of parameters outside the DDP module (distillation's feature adapters) across ranks, as
    DDP does for the model's own."""
    if not w.distributed:
        return
    for p in params:
        if p.grad is not None:
            torch.distributed.all_reduce(p.grad)
            p.grad.div_(w.size)
