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
