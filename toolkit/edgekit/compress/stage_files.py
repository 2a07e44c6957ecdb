"""Where one stage writes: its folder, its cache key, and ONNX files stamped with the run's metadata."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from torch import nn


@dataclass(frozen=True)
class StageFiles:
    dir: Path | None  # the stage's folder (None outside a stage)
    key: str
    input_shape: tuple[int, ...]
    output_names: list[str]
    onnx_metadata: dict = field(default_factory=dict)  # stamped into every ONNX file a stage writes

    def export_onnx(self, model: nn.Module, path: Path) -> Path:
        from ..convert.onnx import export_onnx

        return export_onnx(model, path, self.input_shape, self.output_names, metadata=self.onnx_metadata)
