"""The student family: MobileNetV2 / PFLD-like inverted residuals with a width multiplier and a stride layout."""

from __future__ import annotations

import torch
from torch import nn

from .heads import LandmarkStateHead, conv_bn_relu

# (expansion, channels, repeats, stride) at width 1.0; input 112 -> 7x7 after the last stride.
# Expansions are trimmed at high resolution to stay under 20 MMACs at width 1.0 (19.3 M).
DEFAULT_SETTINGS = ((1, 16, 1, 1), (2, 24, 2, 2), (3, 32, 2, 2), (4, 64, 3, 2), (4, 96, 1, 1))
# The same blocks with the strides moved early: 112 -> 28 after the first block, 7x7 from the 64-channel stage on.
# 57% of the MACs and ~0.65x the ONNX Runtime latency at width 0.75 (the stem and the first two blocks at 56x56
# dominate on CPU). Every weight has the default layout's shape, so a default checkpoint warm-starts it.
EARLY_STRIDE_SETTINGS = ((1, 16, 1, 2), (2, 24, 2, 2), (3, 32, 2, 2), (4, 64, 3, 1), (4, 96, 1, 1))
# The early stride at the first block only: the 32-channel stage keeps the default's 14x14 map. 67% of the MACs;
# pre-trained from the default's weights it reached 8.50% on v3 at 9.0 MMACs (benchmarks/RESULTS.md, ninth session).
EARLY_STRIDE_14_SETTINGS = ((1, 16, 1, 2), (2, 24, 2, 2), (3, 32, 2, 1), (4, 64, 3, 2), (4, 96, 1, 1))
LAYOUTS = {"default": DEFAULT_SETTINGS, "early-stride": EARLY_STRIDE_SETTINGS,
           "early-stride-14": EARLY_STRIDE_14_SETTINGS}


def _round(c: float, multiple: int = 8) -> int:
    return max(multiple, int(c / multiple + 0.5) * multiple)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, expansion: int):
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(conv_bn_relu(cin, hidden, 1, relu6=True))
        layers += [
            conv_bn_relu(hidden, hidden, 3, stride, groups=hidden, relu6=True),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileFace(nn.Module):
    def __init__(self, input_size: int = 112, width: float = 1.0, settings=None,
                 head_channels: int = 16, head_hidden: int = 128, layout: str = "default"):
        super().__init__()
        if layout not in LAYOUTS:
            from ..errors import EdgekitError

            raise EdgekitError(f"unknown student layout {layout!r}; expected one of {', '.join(LAYOUTS)}")
        settings = settings or LAYOUTS[layout]
        cin = _round(16 * width)
        self.stem = conv_bn_relu(3, cin, 3, 2, relu6=True)
        layers: list[nn.Module] = []
        spatial = (input_size + 1) // 2
        for t, c, n, s in settings:
            cout = _round(c * width)
            for i in range(n):
                stride = s if i == 0 else 1
                layers.append(InvertedResidual(cin, cout, stride, t))
                cin = cout
            if s == 2:
                spatial = (spatial + 1) // 2
        self.features = nn.Sequential(*layers)
        # The head is a landmark bottleneck (16x7x7 -> 128 units for 136 outputs); a wider one costs <0.5 MMACs.
        self.head = LandmarkStateHead(cin, spatial, reduce_channels=head_channels, hidden=head_hidden)
        self.feature_channels, self.spatial = cin, spatial

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(x))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.forward_features(x))


def head_kwargs(spec: str | None) -> dict:
    """`"32,256"` -> {"head_channels": 32, "head_hidden": 256}; None -> {} (the family's default head)."""
    if spec is None:
        return {}
    from ..errors import EdgekitError

    parts = spec.split(",")
    if len(parts) != 2 or not all(p.strip().isdigit() and int(p) > 0 for p in parts):
        raise EdgekitError(f"--head must be CHANNELS,HIDDEN as two positive integers (e.g. 32,256), got {spec!r}")
    return {"head_channels": int(parts[0]), "head_hidden": int(parts[1])}
