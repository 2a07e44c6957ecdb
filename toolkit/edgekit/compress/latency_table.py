"""Measured latency per model structure on this machine, kept in a file so each structure is timed once.

Latency-aware compression (a prune to `latency_ms`, a student width chosen by `latency_ms`, `--recipe auto`)
asks for the latency of many candidate structures. Latency depends on the structure (layer shapes), not the
weights, so the table's key is the module's class and every parameter and buffer shape plus the input shape.
Each miss exports the model to ONNX and times it in the runtime (FP32, batch 1, the table's thread count).

The table lives in `<cache>/latency/` (cache: `$EDGEKIT_CACHE_DIR`, else `~/.cache/edgekit`), one file per
machine and runtime: the file name hashes the CPU model and flags, the runtime's version and the thread count,
so a table measured on another CPU or runtime release is never read.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from torch import nn

from ..atomic import write_json
from ..fingerprint import cpu_info, package_versions
from ..hashing import sha256_json
from ..runtime.registry import runtime as runtime_row

SCHEMA = "edgekit-latency-table/1"
log = logging.getLogger("edgekit")


def cache_dir() -> Path:
    return Path(os.environ.get("EDGEKIT_CACHE_DIR") or Path.home() / ".cache" / "edgekit")


def structure_key(model: nn.Module, input_shape: tuple[int, ...]) -> str:
    shapes = [(n, list(t.shape)) for n, t in [*model.named_parameters(), *model.named_buffers()]]
    return sha256_json([type(model).__name__, shapes, list(input_shape)])[:20]


@dataclass
class LatencyTable:
    path: Path
    runtime: str = "onnxruntime"
    threads: int = 1
    machine: dict = field(default_factory=dict)  # what the file name hashes
    entries: dict[str, dict] = field(default_factory=dict)
    hits: int = 0
    measured: int = 0

    @classmethod
    def open(cls, directory: Path | None = None, runtime: str = "onnxruntime", threads: int = 1) -> LatencyTable:
        cpu = cpu_info()
        machine = {"cpu": cpu["model"], "flags": cpu["flags"], "runtime": runtime, "threads": threads,
                   "version": package_versions().get(runtime_row(runtime).packages[0])}
        path = (directory or cache_dir() / "latency") / f"{runtime}-t{threads}-{sha256_json(machine)[:12]}.json"
        table = cls(path, runtime, threads, machine)
        if path.exists():
            try:
                doc = json.loads(path.read_text())
                if doc.get("schema") != SCHEMA or not isinstance(doc.get("entries"), dict):
                    raise ValueError(f"not an {SCHEMA} file")
                table.entries = doc["entries"]
            except (OSError, ValueError) as exc:  # a cache: a broken one is measured again, never trusted
                log.warning("latency table %s unreadable (%s); measuring afresh", path, exc)
        return table

    def latency_ms(self, model: nn.Module, input_shape: tuple[int, ...], output_names: list[str]) -> float:
        """Median FP32 batch-1 latency of this structure, measured now or read from the table."""
        key = structure_key(model, input_shape)
        if key in self.entries:
            self.hits += 1
            return float(self.entries[key]["p50_ms"])
        from ..convert.onnx import export_onnx
        from ..models.registry import count_macs_params
        from ..runtime import load
        from ..runtime.timing import alternating_median_ms

        training = model.training
        with tempfile.TemporaryDirectory() as tmp:
            path = export_onnx(model, Path(tmp) / "probe.onnx", input_shape, output_names, simplify=False)
            model.train(training)
            session = load(path, self.runtime, threads=self.threads)
            sample = np.random.default_rng(0).standard_normal(input_shape).astype(np.float32)
            # three rounds, median of their medians: one slow second on a shared machine moves one round only
            p50 = alternating_median_ms({"p50": lambda: session.run(sample)}, runs=60, min_s=0.3)["p50"]
        self.entries[key] = {"p50_ms": round(p50, 5), "macs": count_macs_params(model, tuple(input_shape))[0],
                             "measured": time.strftime("%Y-%m-%dT%H:%M:%S")}
        self.measured += 1
        self.save()
        return p50

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_json(self.path, {"schema": SCHEMA, "machine": self.machine, "entries": self.entries})


class LatencyProbe:
    """What a stage asks: the measured p50 of a model's structure on this machine, at the run's input shape.
    The table opens on the first question (stages that never ask never touch the cache)."""

    def __init__(self, input_shape: tuple[int, ...], output_names: list[str]):
        self.input_shape, self.output_names = input_shape, output_names
        self._table: LatencyTable | None = None

    def ms(self, model: nn.Module) -> float:
        if self._table is None:
            self._table = LatencyTable.open()
        return self._table.latency_ms(model, self.input_shape, self.output_names)
