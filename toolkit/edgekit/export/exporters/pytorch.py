"""The edgekit checkpoint (safetensors + JSON metadata): what compress's stages write and the torch runtime
reads. Not exported for targets; bench finds it in the run's stage folders."""

from __future__ import annotations

from ...formats import Format, register_format


class PytorchFormat(Format):
    name = "pytorch"
    suffixes = (".safetensors",)
    precisions = ("fp32", "fp16")
    exported = False
    description = "edgekit checkpoint (safetensors + JSON)"


register_format(PytorchFormat())
