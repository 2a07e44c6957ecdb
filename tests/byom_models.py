"""Bring-your-own model factories used by the tests (importable as byom_models:NAME)."""

import torch
from torch import nn


class MultiHead(nn.Module):
    """Three outputs, landmarks flattened to (N, 136), returned as a dict."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.lm = nn.Linear(8, 136)
        self.cls = nn.Linear(8, 5)
        self.emb = nn.Linear(8, 16)

    def forward(self, x):
        f = self.body(x)
        return {"points": torch.sigmoid(self.lm(f)), "logits": self.cls(f), "embedding": self.emb(f)}


class TupleModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, 1, 1)

    def forward(self, x):
        y = self.conv(x)
        return y, y.mean((2, 3))


def multi_head():
    return MultiHead()


def tuple_model():
    return TupleModel()


def not_a_module():
    return 42


class HostileLandmarks(nn.Module):
    """INT8-hostile on purpose: a mean face plus a signal carried by 32 hidden units, one of which is 1000x larger.

    In float the outlier is harmless. Quantized per tensor, the outlier sets the scale and rounds every other
    unit to zero, wiping out the signal: only float fallback of the layers around it recovers fidelity."""

    def __init__(self):
        super().__init__()
        from edgekit.data.face_geometry import FaceShape, face_points, pose

        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(3, 16, 3, 2, 1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 136)
        face = pose(face_points(FaceShape())[0], 0.0, 0.0)
        face = (face - face.min(0)) / (face.max(0) - face.min(0)).max() * 0.6 + 0.2
        with torch.no_grad():
            self.fc2.weight.copy_(torch.randn(136, 32, generator=g) * 0.05)
            self.fc2.bias.copy_(torch.as_tensor(face, dtype=torch.float32).reshape(-1))
            self.fc1.bias[0] = 1.0  # the outlier unit is always on...
            self.fc1.weight[0] *= 1000.0  # ...and 1000x larger, its effect on the output scaled back
            self.fc1.bias[0] *= 1000.0
            self.fc2.weight[:, 0] /= 1000.0

    def forward(self, x):
        h = torch.relu(self.fc1(torch.flatten(self.pool(torch.relu(self.conv(x))), 1)))
        return {"landmarks": self.fc2(h).view(-1, 68, 2), "hidden": h}


def hostile_landmarks():
    return HostileLandmarks()
