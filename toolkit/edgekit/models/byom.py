"""Your own model: `--model pkg.module:factory [--weights file]`, `--model model.onnx` or `--model model.pt2`.

Whatever the source, edgekit sees one shape of model: a torch module that takes its canonical input (NCHW, RGB,
normalised with the model's mean/std) and returns a tuple of outputs in a fixed, named order. A model that wants
BGR or NHWC gets the swap folded in front of it. The `OutputContract` says which output holds landmarks and how
to read them; every other output is carried as it is.

An ONNX model runs through ONNX Runtime as the reference and the distillation teacher. It is converted to PyTorch
(onnx2torch, checked against ONNX Runtime) only when a stage or an export needs torch: pruning, QAT, TFLite.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import EdgekitError
from ..outputs import OutputContract
from ..schemes import load_scheme


@dataclass
class ByomSpec:
    """How to load and read a user's model (the CLI's --model options, or the Python API)."""

    model: str  # pkg.module:factory, or a .onnx / .pt2 file
    weights: str | None = None
    input_shape: tuple[int, ...] | None = None  # N,C,H,W; read from the model where it is fixed
    output_names: list[str] | None = None
    landmarks_output: str | None = None
    landmarks_layout: str = "xy"
    landmarks_units: str = "unit"
    scheme: str = "ibug68"
    states_output: str | None = None
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    color: str = "RGB"  # what the model expects
    layout: str = "NCHW"

    @property
    def source(self) -> str:
        suffix = Path(self.model).suffix.lower()
        return suffix[1:] if suffix in (".onnx", ".pt2") else "factory"


def load_factory(spec: str, option: str = "--model"):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise EdgekitError(f"{option} {spec!r}: expected 'package.module:factory', a .onnx or a .pt2 file")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise EdgekitError(f"{option} {spec!r}: cannot import {module_name!r} ({exc})") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise EdgekitError(f"{option} {spec!r}: {module_name} has no callable {attr!r}")
    return factory


def build_from_factory(spec: str, option: str = "--model") -> nn.Module:
    """Call a user's factory: whatever it raises, or a non-module it returns, is one line naming it."""
    try:
        model = load_factory(spec, option)()
    except EdgekitError:
        raise
    except Exception as exc:  # noqa: BLE001 - the user's factory raised: name it, no traceback
        raise EdgekitError(f"{option} {spec!r}: the factory raised {exc.__class__.__name__}: {exc}") from None
    if not isinstance(model, nn.Module):
        raise EdgekitError(f"{option} {spec!r}: factory returned {type(model).__name__}, expected a torch nn.Module")
    return model


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
    """Wraps a model so forward takes edgekit's canonical input and returns a tuple in the order of `names`."""

    def __init__(self, model: nn.Module, names: list[str], bgr: bool = False, nhwc: bool = False):
        super().__init__()
        self.model, self.names, self.bgr, self.nhwc = model, names, bgr, nhwc

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.bgr:
            x = x.flip(1)
        if self.nhwc:
            x = x.permute(0, 2, 3, 1)
        out = self.model(x)
        if isinstance(out, torch.Tensor):
            return (out,)
        if isinstance(out, dict):
            return tuple(out[n] for n in self.names)
        return tuple(out)


class OrtModule(nn.Module):
    """An ONNX model run by ONNX Runtime behind the nn.Module call (inference only: the teacher, the reference)."""

    def __init__(self, path: Path, bgr: bool = False, nhwc: bool = False):
        super().__init__()
        from ..runtime.ort import OrtSession

        self.path, self.session = path, OrtSession(path, threads=None)
        self.bgr, self.nhwc = bgr, nhwc

    def __deepcopy__(self, memo):  # frozen and stateless on the torch side: a copy is the same model
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        a = x.detach().float().numpy()
        if self.bgr:
            a = a[:, ::-1]
        if self.nhwc:
            a = a.transpose(0, 2, 3, 1)
        return tuple(torch.from_numpy(np.ascontiguousarray(o)) for o in self.session.run(a))


@dataclass
class ByomModel:
    module: nn.Module | None  # torch, canonical input, tuple outputs; None for ONNX until `torch_module()`
    reference: nn.Module  # what scores and teaches: `module`, or ONNX Runtime for an ONNX model
    contract: OutputContract
    input_shape: tuple[int, ...]  # canonical N,C,H,W
    spec: ByomSpec
    onnx_path: Path | None = None  # the user's ONNX file, used as-is for the float ONNX model

    @property
    def output_names(self) -> list[str]:
        return self.contract.names

    @property
    def output_shapes(self) -> list[tuple[int, ...]]:
        return [(1, *s) for s in self.contract.shapes]

    @property
    def landmarks_output(self) -> str | None:
        return self.contract.landmarks

    def torch_module(self, check_inputs: np.ndarray) -> nn.Module:
        """The model in PyTorch (an ONNX model is converted once and checked against ONNX Runtime)."""
        if self.module is None:
            from ..convert.onnx_to_torch import onnx_to_torch

            x = check_inputs.astype(np.float32)
            if self.spec.color == "BGR":
                x = x[:, ::-1]
            if self.spec.layout == "NHWC":
                x = x.transpose(0, 2, 3, 1)
            converted = onnx_to_torch(self.onnx_path, np.ascontiguousarray(x))
            self.module = OutputAdapter(converted, self.contract.names, self.spec.color == "BGR",
                                        self.spec.layout == "NHWC").eval()
        return self.module


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


def _check_conventions(spec: ByomSpec) -> None:
    if spec.color not in ("RGB", "BGR"):
        raise EdgekitError(f"--color {spec.color!r}: expected RGB or BGR")
    if spec.layout not in ("NCHW", "NHWC"):
        raise EdgekitError(f"--layout {spec.layout!r}: expected NCHW or NHWC")


def _canonical_shape(shape: tuple[int, ...] | None, layout: str, source: str) -> tuple[int, ...]:
    if shape is None:
        raise EdgekitError(f"--model ({source}) needs --input-shape N,C,H,W (e.g. 1,3,112,112)")
    if len(shape) != 4 or any(not isinstance(d, int) or d <= 0 for d in shape):
        raise EdgekitError(f"--input-shape {','.join(map(str, shape))}: expected four positive integers")
    return (shape[0], shape[3], shape[1], shape[2]) if layout == "NHWC" else tuple(shape)


def _onnx_input_shape(path: Path, given, layout: str) -> tuple[int, ...]:
    """--input-shape, else the model's own input where its C, H, W are fixed."""
    import onnx

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise EdgekitError(f"not a readable ONNX model ({exc.__class__.__name__})", path=path) from None
    inits = {i.name for i in graph.initializer}
    inputs = [i for i in graph.input if i.name not in inits]
    if len(inputs) != 1:
        raise EdgekitError(f"has {len(inputs)} inputs; edgekit takes models with one image input", path=path)
    dims = [d.dim_value if d.dim_value > 0 else None for d in inputs[0].type.tensor_type.shape.dim]
    if given is None:
        if len(dims) != 4 or None in dims[1:]:
            raise EdgekitError(f"input {inputs[0].name!r} has no fixed C,H,W ({dims}); give --input-shape", path=path)
        given = (1, *dims[1:])
    return _canonical_shape(tuple(given), layout, "onnx")


def _load_pt2(path: Path) -> nn.Module:
    from .export_archive import load_archive

    try:
        return load_archive(path)
    except Exception as exc:  # noqa: BLE001 - a bad or foreign archive
        raise EdgekitError(f"not a torch.export archive torch {torch.__version__} can load ({exc.__class__.__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})", path=path) from None


def _model_file(spec: ByomSpec, holds: str) -> Path:
    path = Path(spec.model)
    if not path.is_file():
        raise EdgekitError("model file not found", path=path)
    if spec.weights:
        raise EdgekitError(f"--weights is for --model pkg.module:factory; {holds} holds its weights")
    return path


def _build_torch(spec: ByomSpec) -> nn.Module:
    if spec.source == "pt2":
        return _load_pt2(_model_file(spec, "a .pt2 archive"))
    model = build_from_factory(spec.model)
    if spec.weights is not None:
        missing, unexpected = model.load_state_dict(read_state_dict(spec.weights), strict=False)
        if missing or unexpected:
            raise EdgekitError(f"weights do not match the model: missing {list(missing)[:3]}, unexpected "
                               f"{list(unexpected)[:3]}", path=spec.weights)
    return model


def load_user_model(spec: ByomSpec) -> ByomModel:
    """Load, probe with a zero input, and check the declared landmark output against the scheme."""
    _check_conventions(spec)
    scheme = load_scheme(spec.scheme)
    bgr, nhwc = spec.color == "BGR", spec.layout == "NHWC"
    if spec.source == "onnx":
        path = _model_file(spec, "an ONNX file")
        shape = _onnx_input_shape(path, spec.input_shape, spec.layout)
        module, reference = None, OrtModule(path, bgr, nhwc)
        try:
            raw = reference(torch.zeros(*shape))
        except Exception as exc:  # noqa: BLE001 - ORT refuses the shape or the file
            raise EdgekitError(f"ONNX Runtime cannot run it on {shape}: {str(exc).splitlines()[0]}",
                               path=path) from None
        natural = reference.session.output_names
        names = _output_names(dict(zip(natural, raw, strict=True)), spec.output_names) if spec.output_names else natural
    else:
        model = _build_torch(spec).eval()
        shape = _canonical_shape(tuple(spec.input_shape) if spec.input_shape else None, spec.layout, spec.source)
        try:
            with torch.no_grad():
                raw_out = model(torch.zeros(*_user_shape(shape, nhwc)))
        except Exception as exc:  # noqa: BLE001 - the model cannot run on the declared shape
            raise EdgekitError(f"--model {spec.model!r} fails on input {_user_shape(shape, nhwc)}: "
                               f"{exc.__class__.__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
        names = _output_names(raw_out, spec.output_names)
        module = OutputAdapter(model, names, bgr, nhwc).eval()
        reference = module
        with torch.no_grad():
            raw = module(torch.zeros(*shape))
        path = None
    contract = OutputContract(list(names), spec.landmarks_output, spec.landmarks_layout, spec.landmarks_units,
                              (shape[2], shape[3]), scheme, spec.states_output,
                              [tuple(t.shape[1:]) for t in raw])
    contract.check(f"--model {spec.model}")
    return ByomModel(module, reference, contract, tuple(shape), spec, onnx_path=path)


def _user_shape(shape: tuple[int, ...], nhwc: bool) -> tuple[int, ...]:
    return (shape[0], shape[2], shape[3], shape[1]) if nhwc else shape


def load_byom(model: str, weights: str | Path | None, input_shape: tuple[int, ...] | None,
              output_names: list[str] | None = None, landmarks_output: str | None = None, **kw) -> ByomModel:
    """Shorthand for `load_user_model(ByomSpec(...))`."""
    return load_user_model(ByomSpec(model, str(weights) if weights else None,
                                    tuple(input_shape) if input_shape else None, output_names, landmarks_output, **kw))
