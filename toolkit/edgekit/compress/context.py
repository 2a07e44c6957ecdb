"""What every stage is given: the run's settings, the frozen teacher and how to read its outputs, and four
collaborators with one job each.

- `ctx.data` (`StageData`): the recipe's splits, training batches, split arrays held for scoring;
- `ctx.scoring` (`Scorer`): task metrics of a model or an ONNX file, and the INT8 NME budget;
- `ctx.latency` (`LatencyProbe`): the measured p50 of a model's structure on this machine;
- `ctx.files` (`StageFiles`): this stage's folder and cache key, and ONNX export with the run's metadata.

Your own model swaps in its own data and scoring classes (`compress/byom.py`).
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import TYPE_CHECKING

from torch import nn

from ..models.checkpoint import CheckpointMeta
from ..outputs import OutputContract, edgekit_contract
from .latency_table import LatencyProbe
from .model_view import canonical
from .scoring import Scorer
from .stage_data import StageData
from .stage_files import StageFiles

if TYPE_CHECKING:  # types only: config.recipe reads the stage registry in this room
    from ..config.recipe import DataSpec, StudentSpec


class StageContext:
    Data = StageData
    Scoring = Scorer

    def __init__(self, teacher: nn.Module, meta: CheckpointMeta, data: DataSpec, run_dir: Path, progress: bool = True,
                 channel_multiple: int = 8, seed: int = 0, workers: int = 1, student: StudentSpec | None = None,
                 int8_schemes: tuple[str, ...] = ("asym",), onnx_metadata: dict | None = None, recipe_name: str = "",
                 recipe_file: str | None = None, contract: OutputContract | None = None,
                 input_shape: tuple[int, ...] | None = None):
        self.teacher, self.meta = teacher, meta  # the teacher's meta: input size, normalisation
        self.contract = contract or edgekit_contract(meta.input_size)  # how to read the models' outputs
        self.input_shape = tuple(input_shape or (1, 3, meta.input_size, meta.input_size))
        self.run_dir, self.progress, self.channel_multiple = run_dir, progress, channel_multiple
        self.seed, self.workers, self.recipe_name = seed, workers, recipe_name
        self.recipe_file = recipe_file  # the YAML path given for a recipe that is not shipped; None for shipped ones
        self.student = student  # the recipe's, for stages that distill
        self.int8_schemes = int8_schemes  # the INT8 ONNX schemes the targets need ("asym", "sym")
        self._onnx_metadata = dict(onnx_metadata or {})
        self.data = self.Data(data, teacher, meta, self.contract, seed, workers)
        self.scoring = self.Scoring(self.data)
        self.latency = LatencyProbe(self.input_shape, self.output_names)
        self.files = StageFiles(None, "", self.input_shape, self.output_names, self.onnx_metadata)

    @property
    def onnx_metadata(self) -> dict:
        """Stamped into every ONNX file a stage writes."""
        return self._onnx_metadata

    @onnx_metadata.setter
    def onnx_metadata(self, value: dict) -> None:
        self._onnx_metadata = dict(value)
        self.files = StageFiles(self.files.dir, self.files.key, self.input_shape, self.output_names,
                                self._onnx_metadata)

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    @property
    def output_names(self) -> list[str]:
        return list(self.contract.names)

    @property
    def scheme(self):
        return self.contract.scheme

    def canonical(self, model: nn.Module) -> nn.Module:
        """`model` as training sees it: (landmarks (N, K, 2) in [0, 1], state logits, *other outputs)."""
        return canonical(model, self.contract)

    def at(self, stage_dir: Path, key: str) -> StageContext:
        """This context for one stage: the same data and caches, that stage's folder and cache key."""
        ctx = copy.copy(self)
        ctx.files = StageFiles(stage_dir, key, self.input_shape, self.output_names, self.onnx_metadata)
        return ctx

    def with_data(self, spec: DataSpec) -> StageContext:
        """This context on other splits (fresh data caches and scoring)."""
        ctx = copy.copy(self)
        ctx.data = self.Data(spec, self.teacher, self.meta, self.contract, self.seed, self.workers)
        ctx.scoring = self.Scoring(ctx.data)
        return ctx
