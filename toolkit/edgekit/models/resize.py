"""Rebuild a pruned model: construct the family, then shrink each layer to the shapes in its state dict.

Pruning changes channel counts, not the code path, so resizing conv, BN and linear layers in place restores the
exact structure from the weights alone. No pickled module objects are needed.
"""

from __future__ import annotations

import torch
from torch import nn


def _parent(model: nn.Module, name: str) -> tuple[nn.Module, str]:
    parts = name.split(".")
    mod = model
    for p in parts[:-1]:
        mod = getattr(mod, p)
    return mod, parts[-1]


def resize_to_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    for name, module in list(model.named_modules()):
        if not name:
            continue
        new = None
        if isinstance(module, nn.Conv2d) and f"{name}.weight" in state:
            w = state[f"{name}.weight"]
            out_c, in_per_group = w.shape[0], w.shape[1]
            depthwise = module.groups == module.in_channels and module.groups > 1
            groups = out_c if depthwise else module.groups
            if (out_c, in_per_group * groups) != (module.out_channels, module.in_channels):
                new = nn.Conv2d(in_per_group * groups, out_c, module.kernel_size, module.stride, module.padding,
                                module.dilation, groups, module.bias is not None)
        elif isinstance(module, nn.BatchNorm2d) and f"{name}.weight" in state:
            n = state[f"{name}.weight"].shape[0]
            if n != module.num_features:
                new = nn.BatchNorm2d(n, module.eps, module.momentum)
        elif isinstance(module, nn.Linear) and f"{name}.weight" in state:
            out_f, in_f = state[f"{name}.weight"].shape
            if (out_f, in_f) != (module.out_features, module.in_features):
                new = nn.Linear(in_f, out_f, module.bias is not None)
        if new is not None:
            parent, attr = _parent(model, name)
            setattr(parent, attr, new)
    return model


def channel_summary(model: nn.Module) -> list[int]:
    """Output channels of every conv, in order: a compact fingerprint of a pruned structure."""
    return [m.out_channels for m in model.modules() if isinstance(m, nn.Conv2d)]
