"""What every exporter is given: the planned file, the compressed model's sources, and how to say "built on the
device". Light at import (numpy only): the exporter files are read by the format registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..formats import format_named

if TYPE_CHECKING:
    from torch import nn

    from ..outputs import OutputContract


@dataclass(frozen=True)
class Planned:
    format: str  # a registered format name
    precision: str  # fp32 | fp16 | int8
    variant: str | None = None  # what else tells two files apart (INT8 QDQ formats: the scheme, asym or sym)

    @property
    def filename(self) -> str:
        return format_named(self.format).filename(self.precision, self.variant)


@dataclass
class ExportSources:
    float_model: nn.Module  # the final PyTorch model (what parity compares against)
    fp32_onnx: Path
    int8_onnx: dict[str, Path]  # the quantize stage's QDQ models by scheme ({} if the recipe did not quantize)
    input_shape: tuple[int, ...]
    calibration: np.ndarray  # normalised calibration inputs (TFLite INT8 representative data)
    samples: np.ndarray  # normalised evaluation inputs for parity
    labels: np.ndarray | None
    key: str  # identity of the sources: the last stage's cache key
    preprocess: dict = field(default_factory=dict)  # input_size, mean, std: how a runner feeds the artifact
    output_names: list[str] = field(default_factory=lambda: ["landmarks", "states"])
    nme_budget: float | None = None  # relative NME rise an FP16/INT8 artifact may show over the float model
    max_float_layers: int = 20  # most layers an INT8 TFLite model may keep in float to meet nme_budget
    max_float_params: int | None = None  # layers with more weights stay INT8 (file size)
    selection: tuple[np.ndarray, np.ndarray] | None = None  # labeled (inputs, landmarks) that choose those layers
    contract: OutputContract | None = None  # how to read the outputs (None: edgekit's landmarks, states)
    absolute_budget: bool = False  # labels are the original model's own outputs: nme_budget is absolute
    # Maps a file's batch function to its metrics on the recipe's evaluation split and real faces (the
    # pipeline's scorer); None leaves the records' `accuracy` empty.
    evaluate: Callable[[Callable], dict] | None = None

    def int8_source(self, scheme: str | None) -> tuple[str, Path]:
        """The QDQ model of `scheme`; a recipe that forced one scheme (symmetric_activations: true|false) made
        only that one, and it serves every target."""
        if not self.int8_onnx:
            raise RuntimeError("the recipe has no quantize stage, so there is no INT8 ONNX model")
        if scheme in self.int8_onnx:
            return scheme, self.int8_onnx[scheme]
        if len(self.int8_onnx) == 1:
            return next(iter(self.int8_onnx.items()))
        raise RuntimeError(f"the quantize stage made no {scheme} INT8 model (it made {', '.join(self.int8_onnx)})")


class BuildOnDevice(Exception):
    """Not an error: the artifact is to be built on the device, with the script the exporter wrote."""

    def __init__(self, script: Path, reason: str):
        super().__init__(reason)
        self.script, self.reason = script, reason
