"""Which memory format to train in: channels_last (about 10% faster on CPU), unless it would crash.

oneDNN 3.12 (in torch 2.13) corrupts the heap in the backward-weights pass of a 1x1, stride-2 convolution with
2 to 15 input channels in channels_last on AVX-512 CPUs (`jit_1x1:avx512_core`, backward_weights, NHWC; "double
free or corruption (!prev)" or a segfault). Pruning makes exactly such layers: a ResNet shortcut pruned to 8
channels. Forward passes, NCHW tensors and the AVX2 kernels are not affected (benchmarks/RESULTS.md has the sweep
and `benchmarks/onednn_backward_repro.py` reproduces it), so models with such a layer train in NCHW on every CPU.
"""

from __future__ import annotations

import torch
from torch import nn


def has_crashing_1x1(model: nn.Module) -> bool:
    """A 1x1 strided convolution with fewer than 16 input channels (the layer oneDNN's AVX-512 kernel breaks on)."""
    return any(isinstance(m, nn.Conv2d) and m.kernel_size == (1, 1) and m.stride != (1, 1) and m.in_channels < 16
               for m in model.modules())


def training_format(model: nn.Module, preferred: bool = True) -> torch.memory_format:
    return torch.channels_last if preferred and not has_crashing_1x1(model) else torch.contiguous_format


def input_format(model: nn.Module) -> torch.memory_format:
    """The format of the model's weights, for its inputs: one channels_last tensor would make every convolution
    downstream run channels_last, whatever format the model was trained in."""
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d) and m.weight.dim() == 4), None)
    if conv is not None and conv.weight.is_contiguous(memory_format=torch.channels_last) \
            and not conv.weight.is_contiguous():
        return torch.channels_last
    return torch.contiguous_format
