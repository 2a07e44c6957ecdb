"""Full-integer TFLite through PT2E, with an accuracy-aware float fallback like the ONNX path's.

litert-torch's PT2E quantizer picks ops to quantize with filters on each node's module. Its own name filter
expects TorchDynamo's `L__self___` keys, which `torch.export` does not produce, and refuses `None` ("keep in
float"), so `SelectiveQuantizer` filters on the fully qualified module names that `torch.export` records.

The fallback ranks layers in PyTorch on the PT2E fake-quantized graph (the same observers and rounding that the
converter bakes in), so finding the float set costs no TFLite conversions; the chosen set is converted once and
the parity check then measures the real file through LiteRT.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import torch
from rich.progress import Progress
from torch import nn

from .. import metrics
from ..outputs import OutputContract, edgekit_contract

# aten ops whose module is a unit of the fallback: the compute ops PT2E annotates (activations and pooling
# follow their producer).
_UNIT_OPS = ("conv2d", "linear", "add", "mul", "cat")
RANK_CALIBRATION = 64  # images per candidate when ranking; the final conversion uses the full calibration set
RANK_CHUNK = 32  # images per forward pass of the batch-dynamic graph used for choosing
EXTRA_CONVERSIONS = 3  # conversions after the first, each with one more float layer, while the file misses


def _module_of(node: torch.fx.Node) -> str | None:
    stack = node.meta.get("nn_module_stack") or {}
    return next(reversed(stack.values()))[0] if stack else None


def _is_unit_op(node: torch.fx.Node) -> bool:
    return node.op == "call_function" and getattr(node.target, "__name__", "").split(".")[0] in _UNIT_OPS


def quantizable_units(exported: torch.fx.GraphModule) -> list[str]:
    """Module names owning a quantizable op of an exported graph, in graph order (a residual block's add is its
    own unit)."""
    units: list[str] = []
    for node in exported.graph.nodes:
        name = _module_of(node) if _is_unit_op(node) else None
        if name and name not in units:
            units.append(name)
    return units


def selective_quantizer(float_modules: Iterable[str] = (), only: Iterable[str] | None = None):
    """The symmetric per-channel PT2E quantizer, keeping `float_modules` in float (or quantizing `only`)."""
    from litert_torch.quantize import pt2e_quantizer

    float_set, only_set = set(float_modules), None if only is None else set(only)

    def wanted(node: torch.fx.Node) -> bool:
        name = _module_of(node)
        if name is None:  # weights and constants carry no module: they follow the op that uses them
            return True
        if only_set is not None:
            return name in only_set
        return name not in float_set

    class SelectiveQuantizer(pt2e_quantizer.PT2EQuantizer):
        def _annotate_for_static_quantization_config(self, model):
            self._annotate_all_static_patterns(model, self.global_config, wanted)
            return model

    return SelectiveQuantizer().set_global(pt2e_quantizer.get_symmetric_quantization_config(is_per_channel=True))


def _exported(model: nn.Module, input_shape: tuple[int, ...], dynamic_batch: bool) -> torch.fx.GraphModule:
    example = (torch.zeros(*input_shape),)
    if not dynamic_batch:
        return torch.export.export(model.eval(), example).module()
    # An example batch of 1 would be specialised to a constant; 2 keeps the dimension symbolic.
    example = (torch.zeros(2, *input_shape[1:]),)
    batch = torch.export.Dim("batch", min=1, max=4096)
    return torch.export.export(model.eval(), example, dynamic_shapes=({0: batch},)).module()


def fake_quantized(model: nn.Module | torch.fx.GraphModule, input_shape: tuple[int, ...], calibration: np.ndarray,
                   quantizer, chunk: int = 1):
    """The PT2E graph after calibration and conversion (Q/DQ kept, not folded): INT8 numerics in PyTorch.

    `chunk` > 1 calibrates `chunk` images per call on a batch-dynamic graph: much faster for ranking, while the
    graph that is converted to TFLite keeps batch 1 (pass a module; an already exported graph is copied)."""
    from torchao.quantization.pt2e import quantize_pt2e

    if isinstance(model, torch.fx.GraphModule):
        with warnings.catch_warnings():  # torch's own pytree deprecation, raised by copying an exported graph
            warnings.simplefilter("ignore", FutureWarning)
            graph = copy.deepcopy(model)
    else:
        graph = _exported(model, input_shape, dynamic_batch=chunk > 1)
    graph = quantize_pt2e.prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for i in range(0, len(calibration), chunk):
            graph(torch.from_numpy(np.ascontiguousarray(calibration[i:i + chunk])))
    return quantize_pt2e.convert_pt2e(graph, fold_quantize=False)


def _nme(graph, samples: np.ndarray, labels: np.ndarray, contract: OutputContract) -> float:
    with torch.no_grad():
        lm = np.concatenate([contract.decode(graph(torch.from_numpy(np.ascontiguousarray(
            samples[i:i + RANK_CHUNK])))).numpy() for i in range(0, len(samples), RANK_CHUNK)])
    return float(metrics.nme_per_image(lm.reshape(labels.shape), labels, contract.scheme).mean())


@dataclass
class FallbackChoice:
    float_modules: list[str]
    nme_float: float
    nme_int8: float  # fake-quantized, with float_modules kept in float
    budget: float  # the NME the INT8 model may reach
    nme_all_int8: float  # fake-quantized, every layer in INT8
    sensitivity: list[dict] = field(default_factory=list)
    ranked: list[str] = field(default_factory=list)  # fallback candidates, most sensitive first
    file_checks: list[dict] = field(default_factory=list)  # the converted file's NME, per conversion
    nme_file: float | None = None  # the final file's, through LiteRT, on the check images
    file_budget: float | None = None  # the NME the file may reach on the check images

    @property
    def within_budget(self) -> bool:
        """The fake-quantized estimate's verdict, or the converted file's once it was checked."""
        if self.nme_file is None:
            return self.nme_int8 <= self.budget
        return self.nme_file <= self.file_budget

    def as_dict(self) -> dict:
        return {"float_layers": self.float_modules, "fake_quant_nme_float": self.nme_float,
                "fake_quant_nme_all_int8": self.nme_all_int8, "fake_quant_nme_int8": self.nme_int8,
                "nme_limit": self.budget, "within_budget": self.within_budget,
                "sensitivity": self.sensitivity[:20], "file_checks": self.file_checks,
                "file_nme_limit": self.file_budget}


def _fake_quant_scorer(model: nn.Module, input_shape: tuple[int, ...], samples: np.ndarray, labels: np.ndarray,
                       contract: OutputContract):
    """(exported graph, NME of a quantizer's fake-quantized graph on the samples, the float model's NME)."""
    with torch.no_grad():
        ref = contract.decode(model.eval()(torch.from_numpy(samples))).numpy()
    nme_float = float(metrics.nme_per_image(ref.reshape(labels.shape), labels, contract.scheme).mean())
    graph = _exported(model, input_shape, dynamic_batch=True)  # exported once, copied per candidate

    def nme_with(quantizer, images: np.ndarray) -> float:
        return _nme(fake_quantized(graph, input_shape, images, quantizer, chunk=RANK_CHUNK), samples, labels,
                    contract)

    return graph, nme_with, nme_float


def choose_float_modules(model: nn.Module, input_shape: tuple[int, ...], calibration: np.ndarray,
                         samples: np.ndarray, labels: np.ndarray, max_nme_increase: float, max_layers: int = 20,
                         progress: bool = False, max_params: int | None = None,
                         contract: OutputContract | None = None, absolute: bool = False) -> FallbackChoice:
    """The fewest most sensitive layers to keep in float so INT8 NME <= float NME x (1 + max_nme_increase), or
    <= float NME + max_nme_increase when `absolute` (labels are the original model's own landmarks)."""
    contract = contract or edgekit_contract(input_shape[-1])
    graph, nme_with, nme_float = _fake_quant_scorer(model, input_shape, samples, labels, contract)
    budget = nme_float + max_nme_increase if absolute else nme_float * (1.0 + max_nme_increase)

    full = nme_with(selective_quantizer(), calibration)
    choice = FallbackChoice([], nme_float, full, budget, full)
    if choice.within_budget or max_layers == 0:
        return choice
    rank_layers(choice, model, graph, nme_with, calibration, progress, max_params)
    for k in range(1, min(max_layers, len(choice.ranked)) + 1):
        choice.float_modules = choice.ranked[:k]
        choice.nme_int8 = nme_with(selective_quantizer(float_modules=choice.ranked[:k]), calibration)
        if choice.within_budget:
            break
    return choice


def rank_layers(choice: FallbackChoice, model: nn.Module, graph, nme_with, calibration: np.ndarray,
                progress: bool, max_params: int | None) -> None:
    """Fill `choice.sensitivity` (each unit quantized alone) and `choice.ranked` (most sensitive first, units
    over `max_params` weights left out)."""
    rows = []
    units = quantizable_units(graph)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task("TFLite INT8 sensitivity", total=len(units))
        for unit in units:
            nme = nme_with(selective_quantizer(only=[unit]), calibration[:RANK_CALIBRATION])
            rows.append({"layer": unit, "nme_increase": nme / max(choice.nme_float, 1e-9) - 1.0})
            bar.advance(task)
    rows.sort(key=lambda r: -r["nme_increase"])
    choice.sensitivity = rows
    sizes = {name: sum(p.numel() for p in m.parameters()) for name, m in model.named_modules()}
    choice.ranked = [r["layer"] for r in rows if max_params is None or sizes.get(r["layer"], 0) <= max_params]


def file_nme(path, samples: np.ndarray, labels: np.ndarray, contract: OutputContract) -> float:
    """NME of a converted .tflite file, run through LiteRT, on labeled samples."""
    from ..runtime.litert import LiteRTSession

    lm = np.asarray(contract.decode(LiteRTSession(path, threads=None).run(samples)))
    return float(metrics.nme_per_image(lm.reshape(labels.shape), labels, contract.scheme).mean())


def convert_within_budget(model: nn.Module, path, convert, input_shape: tuple[int, ...], calibration: np.ndarray,
                          samples: np.ndarray, labels: np.ndarray, max_nme_increase: float, max_layers: int = 20,
                          progress: bool = False, max_params: int | None = None,
                          contract: OutputContract | None = None, absolute: bool = False,
                          extra_conversions: int = EXTRA_CONVERSIONS,
                          check: tuple[np.ndarray, np.ndarray] | None = None) -> FallbackChoice:
    """Choose the float layers on the fake-quantized graph (on `samples`), convert, then check the file itself
    through LiteRT on `check` (default: the same samples) against the same relative budget: the estimate leaves
    out what the converter does on its own (the int8 output tensors' rounding), and a float set chosen on 128
    validation faces missed parity on the evaluation faces by 3% (and then by 0.3%) on a v3 student. Pass the
    parity check's images as `check` so the file is converted until it passes the check it will be judged by.
    While it misses, the next most sensitive layer goes to float and the model is converted again, at most
    `extra_conversions` times; if every file misses, the most accurate one is written again and kept.
    `convert(float_modules)` writes the INT8 file at `path` (`export_tflite`)."""
    contract = contract or edgekit_contract(input_shape[-1])
    choice = choose_float_modules(model, input_shape, calibration, samples, labels, max_nme_increase, max_layers,
                                  progress, max_params, contract, absolute)
    check_x, check_labels = check if check is not None else (samples, labels)
    with torch.no_grad():
        ref = contract.decode(model.eval()(torch.from_numpy(check_x))).numpy()
    check_float = float(metrics.nme_per_image(ref.reshape(check_labels.shape), check_labels, contract.scheme).mean())
    choice.file_budget = check_float + max_nme_increase if absolute else check_float * (1.0 + max_nme_increase)
    for attempt in range(extra_conversions + 1):
        convert(choice.float_modules)
        nme = file_nme(path, check_x, check_labels, contract)
        choice.file_checks.append({"float_layers": list(choice.float_modules), "nme": nme, "float_nme": check_float,
                                   "images": int(len(check_x))})
        if nme <= choice.file_budget or attempt == extra_conversions or len(choice.float_modules) >= max_layers:
            break
        if not choice.ranked:  # all-INT8 looked within budget, so nothing was ranked yet
            graph, nme_with, _ = _fake_quant_scorer(model, input_shape, samples, labels, contract)
            rank_layers(choice, model, graph, nme_with, calibration, progress, max_params)
        rest = [layer for layer in choice.ranked if layer not in choice.float_modules]
        if not rest:
            break
        choice.float_modules = [*choice.float_modules, rest[0]]
    best = min(choice.file_checks, key=lambda c: (c["nme"], len(c["float_layers"])))
    if best["nme"] > choice.file_budget and best is not choice.file_checks[-1]:
        # Every file missed: ship the most accurate one, not the last (more float layers that bought nothing
        # would only make it bigger and slower). One more conversion, recorded as such.
        choice.float_modules = list(best["float_layers"])
        convert(choice.float_modules)
        choice.file_checks.append({**best, "nme": file_nme(path, check_x, check_labels, contract), "kept": True})
    choice.nme_file = choice.file_checks[-1]["nme"]
    return choice
