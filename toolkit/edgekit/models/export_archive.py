"""Your own model after a stage changed it (pruned, fine-tuned): kept as a `torch.export` archive (.pt2).

No edgekit family can rebuild a user's pruned module from weights alone, and pickling the module would break
the no-pickle rule; a .pt2 holds the graph and the weights and loads without unpickling arbitrary objects.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn


def save_archive(model: nn.Module, path: Path, input_shape: tuple[int, ...]) -> Path:
    model = model.eval()
    batch = torch.export.Dim("batch", min=1, max=1024)
    program = torch.export.export(model, (torch.zeros(2, *input_shape[1:]),), dynamic_shapes=({0: batch},))
    tmp = path.with_name(f".{path.stem}.partial.pt2")  # torch.export wants the .pt2 suffix; renamed when whole
    try:
        torch.export.save(program, str(tmp))
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


class ArchivedModule(nn.Module):
    """A loaded .pt2 as an ordinary module. torch.export's module refuses train()/eval() (its mode was fixed at
    export), so it is held outside the module tree: it runs, exports and teaches, but is not trained again."""

    def __init__(self, graph_module: nn.Module):
        super().__init__()
        self.__dict__["graph_module"] = graph_module

    def forward(self, x: torch.Tensor):
        return self.graph_module(x)


def load_archive(path: Path) -> nn.Module:
    return ArchivedModule(torch.export.load(str(path)).module())
