"""Bring-your-own models: `--model pkg.module:factory --weights file`.

A user's model may return one tensor, a tuple/list, or a dict. `OutputAdapter` turns any of those into a fixed
tuple with names, so export and evaluation see one shape of model. The user declares which output, if any,
holds landmarks (N, 68, 2) or (N, 136).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import EdgekitError


def load_factory(spec: str):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise EdgekitError(f"--model {spec!r}: expected 'package.module:factory'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EdgekitError(f"--model {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EdgekitError(f"--model {spec!r}: {module_name} has no callable {attr!r}")
    return factory


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Weights from safetensors, or a torch file loaded with weights_only=True (no arbitrary unpickling)."""
    path = Path(path)
    if not path.is_file():
        raise EdgekitError("weights file not found", path=path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any loader failure is a bad-input error for the user
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else exc.__class__.__name__
        raise EdgekitError(f"cannot load weights ({first}); expected safetensors or a weights-only state dict",
                           path=path) from None
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EdgekitError("does not hold a state dict of tensors", path=path)
    return state


class OutputAdapter(nn.Module):
    """Wraps a model so forward returns a tuple in the order of `names`."""

    def __init__(self, model: nn.Module, names: list[str]):
        super().__init__()
        self.model, self.names = model, names

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = self.model(x)
        if isinstance(out, torch.Tensor):
            return (out,)
        if isinstance(out, dict):
            return tuple(out[n] for n in self.names)
        return tuple(out)


@dataclass
class ByomModel:
    module: OutputAdapter
    output_names: list[str]
    output_shapes: list[tuple[int, ...]]
    landmarks_output: str | None
    input_shape: tuple[int, ...]


def _output_names(out, given: list[str] | None) -> list[str]:
    if isinstance(out, dict):
        natural = list(out.keys())
    elif isinstance(out, torch.Tensor):
        natural = ["output0"]
    elif isinstance(out, (tuple, list)) and all(isinstance(t, torch.Tensor) for t in out):
        natural = [f"output{i}" for i in range(len(out))]
    else:
        raise EdgekitError(f"model returns {type(out).__name__}; expected a tensor, a tuple/list or a dict of "
                           "tensors")
    if given is None:
        return natural
    if len(given) != len(natural):
        raise EdgekitError(f"--output-names gives {len(given)} names but the model has {len(natural)} outputs")
    if isinstance(out, dict) and set(given) != set(natural):
        raise EdgekitError(f"--output-names {given} do not match the model's output keys {natural}")
    return given


def load_byom(spec: str, weights: str | Path | None, input_shape: tuple[int, ...],
              output_names: list[str] | None = None, landmarks_output: str | None = None) -> ByomModel:
    """Build, load and probe a user's model with a dummy input of `input_shape`."""
    if len(input_shape) != 4 or any(d <= 0 for d in input_shape):
        raise EdgekitError(f"--input-shape {','.join(map(str, input_shape))}: expected N,C,H,W positive integers")
    model = load_factory(spec)()
    if not isinstance(model, nn.Module):
        raise EdgekitError(f"--model {spec!r}: factory returned {type(model).__name__}, expected a torch nn.Module")
    if weights is not None:
        state = read_state_dict(weights)
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise EdgekitError(f"weights do not match the model: missing {list(missing)[:3]}, unexpected "
                               f"{list(unexpected)[:3]}", path=weights)
    model.eval()
    with torch.no_grad():
        out = model(torch.zeros(*input_shape))
    names = _output_names(out, output_names)
    adapter = OutputAdapter(model, names).eval()
    with torch.no_grad():
        shapes = [tuple(t.shape) for t in adapter(torch.zeros(*input_shape))]
    if landmarks_output is not None:
        if landmarks_output not in names:
            raise EdgekitError(f"--landmarks-output {landmarks_output!r} is not an output; outputs: {names}")
        shape = shapes[names.index(landmarks_output)]
        if shape[1:] not in ((68, 2), (136,)):
            raise EdgekitError(f"--landmarks-output {landmarks_output!r} has shape {shape}; expected (N, 68, 2) or "
                               "(N, 136)")
    return ByomModel(adapter, names, shapes, landmarks_output, tuple(input_shape))
