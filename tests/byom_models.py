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


# Three model styles for the "your own model" acceptance tests: none is an edgekit family.
def _face_bias(points: int, eyes: tuple[int, int]) -> torch.Tensor:
    """Unit coordinates spread over the crop, with the two normalising points 0.4 apart: outputs look like a
    face layout, so NME against them is well defined."""
    g = torch.Generator().manual_seed(points)
    xy = 0.25 + 0.5 * torch.rand(points, 2, generator=g)
    xy[eyes[0]], xy[eyes[1]] = torch.tensor([0.3, 0.4]), torch.tensor([0.7, 0.4])
    return xy


def _separable(cin: int, cout: int, stride: int) -> nn.Sequential:
    pad = [nn.ZeroPad2d((0, 1, 0, 1))] if stride == 2 else []
    return nn.Sequential(*pad, nn.Conv2d(cin, cin, 3, stride, 0 if stride == 2 else 1, groups=cin), nn.ReLU(),
                         nn.Conv2d(cin, cout, 1), nn.ReLU())


class StyleA(nn.Module):
    """68 points as (N, 136) interleaved; no BatchNorm; ZeroPad2d((0,1,0,1)) before stride-2 convolutions;
    depthwise-separable blocks; meant for mean-only normalisation; no state output."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.ZeroPad2d((0, 1, 0, 1)), nn.Conv2d(3, 16, 3, 2), nn.ReLU())
        self.blocks = nn.Sequential(_separable(16, 24, 2), _separable(24, 24, 1), _separable(24, 32, 2))
        self.fc = nn.Linear(32 * 8 * 8, 136)
        with torch.no_grad():
            self.fc.weight.mul_(0.05)
            self.fc.bias.copy_(_face_bias(68, (36, 45)).reshape(-1))

    def forward(self, x):
        return self.fc(self.blocks(self.stem(x)).flatten(1))


class StyleB(nn.Module):
    """5 points; three outputs: box (N, 4), 10 planar coordinates (x..x, y..y), 2-way softmax; PReLU."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.PReLU(16),
                                  nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.PReLU(32),
                                  nn.Conv2d(32, 32, 3, 2, 1), nn.PReLU(32), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.box, self.points, self.face = nn.Linear(32, 4), nn.Linear(32, 10), nn.Linear(32, 2)
        with torch.no_grad():
            self.points.weight.mul_(0.05)
            self.points.bias.copy_(_face_bias(5, (0, 1)).T.reshape(-1))  # planar: x0..x4, y0..y4

    def forward(self, x):
        f = self.body(x)
        return self.box(f), self.points(f), torch.softmax(self.face(f), dim=1)


class StyleC(nn.Module):
    """98 points as (N, 98, 2)."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 16, 3, 2, 1), nn.BatchNorm2d(16), nn.ReLU(),
                                  nn.Conv2d(16, 32, 3, 2, 1), nn.BatchNorm2d(32), nn.ReLU(),
                                  nn.Conv2d(32, 32, 3, 2, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(2), nn.Flatten())
        self.fc = nn.Linear(128, 196)
        with torch.no_grad():
            self.fc.weight.mul_(0.05)
            self.fc.bias.copy_(_face_bias(98, (60, 72)).reshape(-1))

    def forward(self, x):
        return self.fc(self.body(x)).view(-1, 98, 2)


def style_a():
    return StyleA()


def style_b():
    return StyleB()


def style_c():
    return StyleC()


def raising_factory():
    raise RuntimeError("CUDA out of memory (the user's own bug)")


class NhwcBgr(nn.Module):
    """Style (a) behind an NHWC, BGR input: the convention of many TensorFlow-born and OpenCV pipelines."""

    def __init__(self):
        super().__init__()
        self.inner = StyleA()

    def forward(self, x):  # x: (N, H, W, 3) BGR
        return self.inner(x.permute(0, 3, 1, 2).flip(1))


def nhwc_bgr():
    return NhwcBgr()


class TinyStudentA(nn.Module):
    """Your own student for style (a): the same (N, 136) output, a fraction of the MACs."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 8, 3, 2, 1), nn.ReLU(), nn.Conv2d(8, 16, 3, 2, 1), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(4), nn.Flatten())
        self.fc = nn.Linear(256, 136)
        with torch.no_grad():
            self.fc.bias.copy_(_face_bias(68, (36, 45)).reshape(-1))

    def forward(self, x):
        return self.fc(self.body(x))


def tiny_student_a():
    return TinyStudentA()


class ChannelScale(nn.Module):
    """A layer of the user's own with a per-channel parameter: torch-pruning has no rule for it."""

    def __init__(self, channels: int):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(1, channels, 1, 1))

    def forward(self, x):
        return x * self.scale


class WithCustomLayer(StyleC):
    def __init__(self):
        super().__init__()
        self.body.insert(3, ChannelScale(16))


def with_custom_layer():
    return WithCustomLayer()
