"""Targets: where a model will run, which artifacts it needs and what budgets it must meet."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from ..formats import PRECISIONS, exported_format_names, format_named
from ..runtime.registry import runtime, runtime_for, target_runtime_names
from .base import Strict
from .yamlconf import load_yaml_model

# user@host, host, or user@host:port; letters, digits, '.', '-', '_' only, so nothing can reach a shell, and
# user and host start with a letter or digit, so ssh never reads one as an option ("-Fevil").
HOST_PATTERN = re.compile(r"^(?:[A-Za-z0-9][A-Za-z0-9._-]*@)?[A-Za-z0-9][A-Za-z0-9._-]*(?::\d{1,5})?$")


class Hardware(Strict):
    """What the target is. A deploy decision counts as measured there (`chosen`) only on a machine that matches
    `arch` and `accelerator`; elsewhere it is a `proxy` (README, "Deploy decision")."""

    # A label (cpu, gpu, jetson, mobile, or your own device's): what the target can do is read from arch,
    # accelerator, runtimes, formats and precision, never from this name, so a new device is one YAML file.
    kind: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    family: str | None = None
    arch: Literal["x86_64", "arm64", "any"] = "any"
    accelerator: Literal["none", "nvidia-gpu", "jetson"] = "none"


class Power(Strict):
    nvpmodel: str | int | None = None
    jetson_clocks: Literal["required", "optional", "off"] = "optional"


class LatencyBudget(Strict):
    p50: float | None = Field(None, gt=0.0)
    p90: float | None = Field(None, gt=0.0)
    p99: float | None = Field(None, gt=0.0)


class AccuracyBudget(Strict):
    """What an artifact may lose on this target, in the deploy decision's own bench (same images for all)."""

    max_nme_increase: float | None = Field(None, ge=0.0, description="relative to the best float artifact; "
                                           "default: the recipe's export budget")
    max_nme: float | None = Field(None, gt=0.0, description="absolute NME (0.03 = 3%)")
    # Robustness slices (edgekit.slices) and what each may lose, e.g. {profile: 0.05}: relative to the same slice of
    # the best float artifact; a slice with too few images in the decision's bench is not judged.
    slices: dict[str, Annotated[float, Field(ge=0.0)]] | None = None

    @field_validator("slices")
    @classmethod
    def _known_slices(cls, v: dict | None) -> dict | None:
        from ..slices import SLICE_NAMES

        unknown = sorted(set(v or {}) - set(SLICE_NAMES))
        if unknown:
            raise ValueError(f"unknown slice {unknown[0]!r}; expected one of {', '.join(SLICE_NAMES)}")
        return v


class Target(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    description: str = ""
    hardware: Hardware
    # Names from the runtime and format registries (one file each in edgekit/runtime/, edgekit/export/exporters/).
    runtimes: list[str] = Field(min_length=1)
    formats: list[str] = Field(min_length=1)
    precision: list[Literal[PRECISIONS]] = Field(min_length=1)
    threads: int | None = Field(None, ge=1, le=256)
    xnnpack: bool = False
    build: Literal["local", "on-device"] = "local"
    dla_core: int | None = Field(None, ge=0, le=1)
    host: str | None = None
    hosts: list[str] | None = Field(None, min_length=1)  # a fleet of one class: benched at once, judged per host
    power: Power | None = None
    channel_multiple: int = Field(8, ge=1, le=128)
    latency_budget_ms: LatencyBudget | None = None  # checked against the deploy decision's choice
    accuracy_budget: AccuracyBudget | None = None

    @field_validator("host")
    @classmethod
    def _host(cls, v: str | None) -> str | None:
        if v is not None and not HOST_PATTERN.match(v):
            raise ValueError("host must look like user@host or host[:port] (letters, digits, '.', '-', '_'; "
                             "starting with a letter or digit)")
        return v

    @field_validator("hosts")
    @classmethod
    def _hosts(cls, v: list[str] | None) -> list[str] | None:
        for h in v or ():
            cls._host(h)
        if v is not None and len(set(v)) != len(v):
            raise ValueError("hosts must not repeat a host")
        return v

    @model_validator(mode="after")
    def _one_way_to_name_hosts(self):
        if self.host and self.hosts:
            raise ValueError("give host (one device) or hosts (a fleet), not both")
        return self

    @property
    def fleet(self) -> list[str]:
        """The hosts to bench on: `hosts`, or `[host]`, or none (here)."""
        return list(self.hosts or ([self.host] if self.host else []))

    @field_validator("runtimes")
    @classmethod
    def _runtimes(cls, v: list[str]) -> list[str]:
        return _known(v, target_runtime_names(), "runtime")

    @field_validator("formats")
    @classmethod
    def _formats(cls, v: list[str]) -> list[str]:
        return _known(v, exported_format_names(), "format")

    @property
    def arch(self) -> str:
        return self.hardware.arch

    @property
    def accelerator(self) -> str:
        return self.hardware.accelerator

    @property
    def has_gpu(self) -> bool:
        """An NVIDIA GPU (discrete or Jetson): the runtimes' CUDA rows, FP16 PyTorch checkpoints."""
        return self.hardware.accelerator != "none"

    def can_run(self, fmt: str, precision: str) -> bool:
        """Whether this target takes an artifact of `fmt` at `precision` (the format has the last word: TFLite
        FP16 is for CPU delegates, not GPU targets)."""
        if fmt not in self.formats or precision not in self.precision:
            return False
        return format_named(fmt).serves(self, precision)

    def concrete_runtimes(self) -> list[str]:
        """The runtime rows this target means on its hardware (a GPU target's onnxruntime is the CUDA row)."""
        return [runtime_for(name, gpu=self.has_gpu) for name in self.runtimes]

    @property
    def symmetric_int8(self) -> bool:
        """One of its formats or runtimes needs INT8 with symmetric activations (TensorRT)."""
        return any(format_named(f).symmetric_int8 for f in self.formats) or \
            any(runtime(r).symmetric_int8 for r in self.concrete_runtimes())

    @property
    def int8_scheme(self) -> str:
        """The INT8 QDQ scheme this target's runtimes want: TensorRT needs symmetric activations (zero-point 0);
        ONNX Runtime on CPU runs asymmetric uint8 activations faster (2.8x FP32 on the teacher, on a VNNI Xeon,
        where symmetric int8 ran 1.2x slower than FP32). LiteRT's INT8 is built apart, through PT2E."""
        return "sym" if self.symmetric_int8 else "asym"

    @property
    def needs_int8_onnx(self) -> bool:
        return "int8" in self.precision and any(format_named(f).int8_from_qdq for f in self.formats)

    @property
    def needs_torch_model(self) -> bool:
        """One of its formats is converted from the PyTorch model (an ONNX model of yours must become one)."""
        return any(format_named(f).from_torch for f in self.formats)


def _known(names: list[str], known: tuple[str, ...], what: str) -> list[str]:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown[0]!r}; expected one of {', '.join(known)}")
    return names


def int8_schemes(targets: list[Target]) -> tuple[str, ...]:
    """Every INT8 ONNX scheme the targets need, asymmetric first; asym alone when none does (the run table's
    INT8 row is scored through ONNX Runtime on CPU)."""
    found = {t.int8_scheme for t in targets if t.needs_int8_onnx}
    return tuple(s for s in ("asym", "sym") if s in found) or ("asym",)


def load_target(path: str | Path) -> Target:
    return load_yaml_model(path, Target)
