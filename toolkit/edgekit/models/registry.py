"""Model families by name, so checkpoints and recipes can say `arch: resnet` with kwargs."""

from __future__ import annotations

from torch import nn

from ..errors import EdgekitError
from .contract_student import ContractStudent
from .student import MobileFace
from .teacher import ResNetFace

FAMILIES: dict[str, type[nn.Module]] = {"resnet": ResNetFace, "mobile": MobileFace, "mobile-contract": ContractStudent}
OUTPUT_NAMES = ("landmarks", "states")


def build(arch: str, **kwargs) -> nn.Module:
    if arch not in FAMILIES:
        raise EdgekitError(f"unknown architecture {arch!r}; expected one of {', '.join(sorted(FAMILIES))}")
    try:
        return FAMILIES[arch](**kwargs)
    except TypeError as exc:
        raise EdgekitError(f"bad arguments for architecture {arch!r}: {exc}") from None


def count_macs_params(model: nn.Module, input_size: int | tuple[int, ...] = 112) -> tuple[int, int]:
    """MACs and parameters of one forward pass at batch 1 (torch-pruning's counter).

    `input_size` is a square side for the families, or a full (1, C, H, W) shape for any model."""
    import torch
    import torch_pruning as tp

    shape = (1, 3, input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    was_training = model.training
    model.eval()
    macs, params = tp.utils.count_ops_and_params(model, torch.zeros(*shape))
    model.train(was_training)
    return int(macs), int(params)
