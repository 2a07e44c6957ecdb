"""A student for your own model: edgekit's mobile backbone with heads that speak your model's output contract.

Same output names, shapes, landmark layout and units as the teacher, so the distilled model drops into the
application that ran the original. Landmarks regress from the channel-reduced spatial map (as in every edgekit
head); every other output (box, probabilities, state logits...) reads globally pooled features. An output the
teacher gives as probabilities (non-negative, summing to 1) gets a softmax.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from ..outputs import OutputContract
from .student import MobileFace


class ContractHead(nn.Module):
    def __init__(self, in_channels: int, spatial: int, contract: OutputContract, probabilities: list[str],
                 reduce_channels: int = 16, hidden: int = 128):
        super().__init__()
        self.contract, self.probabilities = contract, set(probabilities)
        k = contract.scheme.points if contract.landmark_index is not None else 0
        self.reduce = nn.Sequential(nn.Conv2d(in_channels, reduce_channels, 1, bias=False),
                                    nn.BatchNorm2d(reduce_channels), nn.ReLU(inplace=True))
        self.landmarks = nn.Sequential(nn.Flatten(), nn.Linear(reduce_channels * spatial * spatial, hidden),
                                       nn.ReLU(inplace=True), nn.Linear(hidden, 2 * k)) if k else None
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.others = nn.ModuleDict({
            str(i): nn.Linear(in_channels, math.prod(contract.shapes[i]))
            for i in range(len(contract.names)) if i != contract.landmark_index})

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        c, n = self.contract, x.shape[0]
        outs: list[torch.Tensor | None] = [None] * len(c.names)
        if self.landmarks is not None:
            unit = self.landmarks(self.reduce(x)).view(n, c.scheme.points, 2)
            outs[c.landmark_index] = c.encode(unit)
        pooled = torch.flatten(self.pool(x), 1)
        for key, layer in self.others.items():
            i = int(key)
            y = layer(pooled).reshape(n, *c.shapes[i])
            outs[i] = torch.softmax(y, dim=-1) if c.names[i] in self.probabilities else y
        return tuple(outs)

    def init_landmark_bias(self, mean_landmarks: torch.Tensor) -> None:
        """Start from the teacher's mean face (unit x, y per point) so training learns offsets."""
        if self.landmarks is not None:
            with torch.no_grad():
                self.landmarks[-1].bias.copy_(mean_landmarks.reshape(-1))
                self.landmarks[-1].weight.mul_(0.1)


class ContractStudent(MobileFace):
    """`arch: mobile-contract`; `contract` is `OutputContract.to_json()`, so a checkpoint rebuilds it."""

    def __init__(self, input_size: int = 112, width: float = 1.0, contract: dict | None = None,
                 probabilities: list[str] | None = None, head_channels: int = 16, head_hidden: int = 128,
                 layout: str = "default"):
        super().__init__(input_size, width, head_channels=head_channels, head_hidden=head_hidden, layout=layout)
        c = OutputContract.from_json(contract) if contract else OutputContract(["landmarks"], shapes=[(136,)])
        self.head = ContractHead(self.feature_channels, self.spatial, c, probabilities or [], head_channels,
                                 head_hidden)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.head(self.forward_features(x))
