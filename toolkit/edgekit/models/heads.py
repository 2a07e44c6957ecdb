"""The two task heads shared by every edgekit family.

Landmarks regress from a flattened, channel-reduced spatial map: global pooling alone throws away the
"where" that landmarks need. States (open/closed) only need "what", so they read globally pooled features.
Only conv, BN, ReLU, pooling, flatten and linear: ops every exporter and quantizer handles.
"""

from __future__ import annotations

import torch
from torch import nn

from ..landmarks import NUM_POINTS, STATE_NAMES


class LandmarkStateHead(nn.Module):
    def __init__(self, in_channels: int, spatial: int, reduce_channels: int = 32, hidden: int = 256):
        super().__init__()
        self.reduce = nn.Sequential(
            nn.Conv2d(in_channels, reduce_channels, 1, bias=False),
            nn.BatchNorm2d(reduce_channels),
            nn.ReLU(inplace=True),
        )
        self.landmarks = nn.Sequential(
            nn.Flatten(),
            nn.Linear(reduce_channels * spatial * spatial, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, NUM_POINTS * 2),
        )
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.states = nn.Linear(in_channels, len(STATE_NAMES))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        lm = self.landmarks(self.reduce(x)).view(-1, NUM_POINTS, 2)
        st = self.states(torch.flatten(self.pool(x), 1))
        return lm, st

    def init_landmark_bias(self, mean_landmarks: torch.Tensor) -> None:
        """Start from the mean face so early training learns offsets, not the whole layout."""
        with torch.no_grad():
            self.landmarks[-1].bias.copy_(mean_landmarks.reshape(-1))
            self.landmarks[-1].weight.mul_(0.1)


def conv_bn_relu(cin: int, cout: int, k: int = 3, stride: int = 1, groups: int = 1, relu6: bool = False):
    return nn.Sequential(
        nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True) if relu6 else nn.ReLU(inplace=True),
    )
