"""The oneDNN AVX-512 crash in 1x1 strided backward-weights (channels_last, < 16 input channels) is avoided."""

import subprocess
import sys

import torch
from torch import nn

from edgekit.models.registry import build
from edgekit.train.memory_format import has_crashing_1x1, input_format, training_format

# A quarter-width ResNetFace has the layer: its first shortcut is a 1x1, stride-2 convolution from 8 channels
# at 56x56, the shape a pruned teacher reaches. Trained channels_last, it crashes on AVX-512 CPUs (oneDNN 3.12).
TRAIN_QUARTER_RESNET = """
import torch
from edgekit.data.batches import collate
from edgekit.data import SynthFaces
from edgekit.models.registry import build
from edgekit.train.loop import FitConfig, fit
from edgekit.train.teacher import supervised_step_loss

model = build("resnet", input_size=112, width=0.25)
ds = SynthFaces("train", length=8)
batch = collate([ds[i] for i in range(8)])
step = supervised_step_loss("wing", 1.0, 112.0)
fit(model, FitConfig(epochs=1, steps_per_epoch=3), lambda epoch: [batch] * 3, step, lambda m: {"nme": 0.1},
    progress=False)
print("trained")
"""


def test_models_with_the_crashing_layer_train_in_nchw():
    risky = nn.Sequential(nn.Conv2d(3, 8, 3), nn.Conv2d(8, 8, 1, stride=2))
    assert has_crashing_1x1(risky) and training_format(risky) == torch.contiguous_format
    for safe in (nn.Sequential(nn.Conv2d(16, 8, 1, stride=2)), nn.Sequential(nn.Conv2d(8, 8, 1)),
                 nn.Sequential(nn.Conv2d(8, 8, 3, stride=2))):
        assert not has_crashing_1x1(safe) and training_format(safe) == torch.channels_last
    assert has_crashing_1x1(build("resnet", input_size=112, width=0.25))
    assert not has_crashing_1x1(build("resnet", input_size=112))  # the full teacher keeps channels_last
    risky.to(memory_format=training_format(risky))
    assert input_format(risky) == torch.contiguous_format
    safe = nn.Sequential(nn.Conv2d(3, 16, 3)).to(memory_format=torch.channels_last)
    assert input_format(safe) == torch.channels_last


def test_training_a_model_with_the_crashing_layer_finishes():
    """In a child process: on an affected CPU the unguarded run dies with a heap corruption or a segfault."""
    r = subprocess.run([sys.executable, "-c", TRAIN_QUARTER_RESNET], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0 and "trained" in r.stdout, r.stderr[-2000:]
