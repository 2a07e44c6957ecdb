"""The teacher family: a compact ResNet (BasicBlocks) sized for a 112x112 face crop."""

from __future__ import annotations

import torch
from torch import nn

from .heads import LandmarkStateHead, conv_bn_relu


class BasicBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_relu(cin, cout, 3, stride),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.body(x) + self.shortcut(x))


class ResNetFace(nn.Module):
    """stem (stride 2) then stages of BasicBlocks, each stage halving the resolution."""

    def __init__(self, input_size: int = 112, width: float = 1.0, channels=(32, 48, 96, 192),
                 blocks=(2, 2, 2)):
        super().__init__()
        ch = [max(8, int(round(c * width / 8)) * 8) for c in channels]
        self.stem = conv_bn_relu(3, ch[0], 3, 2)
        layers: list[nn.Module] = []
        cin = ch[0]
        for cout, n in zip(ch[1:], blocks, strict=True):
            for i in range(n):
                layers.append(BasicBlock(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*layers)
        spatial = input_size
        for _ in range(1 + len(blocks)):
            spatial = (spatial + 1) // 2
        self.head = LandmarkStateHead(cin, spatial)
        self.feature_channels = cin

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.forward_features(x))
