"""K optimizer steps of edgekit's training loop on a tiny model, run alone or under torchrun; rank 0 writes the
parameters (safetensors) for tests/test_distributed.py to compare.

    python -m torch.distributed.run --standalone --nproc-per-node 2 tests/ddp_probe.py OUT.safetensors [--no-sync-bn]
"""

import sys

import torch
from safetensors.torch import save_file

from edgekit.data.batches import Augmented, loader
from edgekit.models.registry import build
from edgekit.train import distributed
from edgekit.train.loop import FitConfig, fit
from edgekit.train.teacher import MixedSynth, supervised_step_loss

SIZE, BATCH, STEPS = 64, 8, 4


def main(out: str, sync_batchnorm: bool = True) -> None:
    torch.set_num_threads(1)
    if not sync_batchnorm:  # the negative control: each rank normalises by its own half-batch
        distributed._sync_class = lambda: torch.nn.BatchNorm2d
    torch.manual_seed(0)
    model = build("mobile", input_size=SIZE, width=0.25)
    init = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    world = distributed.world()
    rank_batch = distributed.per_rank_batch(BATCH, world)

    def train_batches(epoch: int):
        ds = Augmented(MixedSynth(SIZE, STEPS * BATCH, 0, 1, 0.0), 0, epoch)
        return loader(ds, rank_batch, sampler=distributed.sampler(ds, world) if world.distributed else None)

    cfg = FitConfig(epochs=1, steps_per_epoch=STEPS, lr=1e-3, warmup_epochs=0.25, patience=5, seed=0,
                    channels_last=False)
    fit(model, cfg, train_batches, supervised_step_loss("wing", 1.0, float(SIZE)), lambda m: {"nme": 0.0},
        progress=False)
    if world.main:
        save_file({**{k: v.detach().contiguous() for k, v in model.state_dict().items()},
                   **{f"init.{k}": v for k, v in init.items()}}, out)


if __name__ == "__main__":
    main(sys.argv[1], sync_batchnorm="--no-sync-bn" not in sys.argv)
