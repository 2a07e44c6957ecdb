"""Reading a model's outputs the way training and scoring do, whatever the model's own output layout."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..outputs import OutputContract


class CanonicalView(nn.Module):
    """A model's outputs as the training losses read them: (landmarks (N, K, 2) in [0, 1] of the crop, state
    logits (N, S) or (N, 0), *every other output). Shares the model's parameters: training the view trains it."""

    def __init__(self, model: nn.Module, contract: OutputContract):
        super().__init__()
        self.model, self.contract = model, contract

    def forward(self, x: torch.Tensor):
        out = tuple(self.model(x))
        c, n = self.contract, x.shape[0]
        lm = c.decode(out) if c.landmark_index is not None else x.new_zeros(n, 0, 2)
        st = out[c.state_index] if c.state_index is not None else x.new_zeros(n, 0)
        return (lm, st, *(out[i] for i in c.other_indices))


def canonical(model: nn.Module, contract: OutputContract) -> nn.Module:
    """`model` as training sees it: (landmarks (N, K, 2) in [0, 1], state logits, *other outputs)."""
    if contract.names == ["landmarks", "states"] and contract.shapes[:1] == [(68, 2)]:
        return model
    return model if isinstance(model, CanonicalView) else CanonicalView(model, contract)


def run_outputs(model: nn.Module, x: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    """Every output of a torch model over normalised inputs, in batches."""
    model.eval()
    with torch.no_grad():
        parts = [[t.float().numpy() for t in _as_tuple(model(torch.from_numpy(x[i:i + batch])))]
                 for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def run_callable(run, x: np.ndarray, batch: int = 128) -> list[np.ndarray]:
    """Every output of any callable mapping a normalised batch to its outputs (an ONNX Runtime session's run)."""
    parts = [[np.asarray(o) for o in run(x[i:i + batch])] for i in range(0, len(x), batch)]
    return [np.concatenate([p[k] for p in parts]) for k in range(len(parts[0]))]


def _as_tuple(out) -> tuple:
    return (out,) if isinstance(out, torch.Tensor) else tuple(out)
