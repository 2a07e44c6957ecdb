"""ONNX -> PyTorch for user models that pruning, QAT or a TFLite export must run in torch (onnx2torch).

onnx2torch converts op versions up to opset 17. A newer file is first simplified by onnxslim (constant folding
removes most shape arithmetic), then relabelled to opset 17 when every remaining op means the same there: ops
whose schema did not change after 17, or changed only by new tensor types (float8, int4, bfloat16). Anything
else is refused by name, so the user can re-export at opset 17. Conversion is then checked against ONNX
Runtime on real inputs before anything uses it.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import onnx

from ..errors import EdgekitError

CONVERT_OPSET = 17
# Ops whose schema changes after opset 17 only added tensor types (ONNX Changelog, opsets 18-24), given the
# node does not use the inputs or attributes listed (those changed meaning).
_TYPE_ONLY_AFTER_17 = {
    "Cast": (), "CastLike": (), "Constant": (), "ConstantOfShape": (), "Identity": (), "Reshape": (),
    "Shape": (), "Size": (), "Squeeze": (), "Unsqueeze": (), "Transpose": (), "Flatten": (), "Equal": (),
    "Conv": (), "ConvTranspose": (), "MaxPool": (), "GlobalAveragePool": (), "GlobalMaxPool": (),
    "Relu": (), "LeakyRelu": (), "PRelu": (), "Sigmoid": (), "HardSigmoid": (), "HardSwish": (), "Elu": (),
    "Selu": (), "Softplus": (), "Tanh": (), "Gemm": (), "MatMul": (), "Softmax": (), "BatchNormalization": (),
    "Dropout": (), "InstanceNormalization": (), "Gelu": (), "Mish": (),
    "AveragePool": ("dilations",), "Pad": ("#axes", "mode=wrap"),
}
PARITY_TOLERANCE = 1e-3  # relative to each output's scale


def _torchvision_stand_in() -> None:
    """onnx2torch imports torchvision only for its NMS and RoiAlign converters. torchvision's wheels need the
    CUDA build of torch; with the CPU build they fail at import. Face-landmark CNNs use neither op, so when
    torchvision cannot be imported a stand-in module lets onnx2torch load, and those two ops raise if used."""
    try:
        import torchvision.ops  # noqa: F401
        return
    except Exception:  # noqa: BLE001 - ImportError, or RuntimeError from a wheel built for another torch
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]

    def unavailable(*_a, **_k):
        raise EdgekitError("this ONNX model uses NonMaxSuppression/RoiAlign, which need torchvision")

    tv, ops = types.ModuleType("torchvision"), types.ModuleType("torchvision.ops")
    ops.roi_align = ops.nms = ops.batched_nms = unavailable
    tv.ops = ops
    sys.modules["torchvision"], sys.modules["torchvision.ops"] = tv, ops


def _opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), CONVERT_OPSET)


def _uses(node: onnx.NodeProto, feature: str) -> bool:
    if feature == "#axes":
        return len(node.input) > 3 and bool(node.input[3])
    if "=" in feature:
        key, value = feature.split("=")
        return any(a.name == key and onnx.helper.get_attribute_value(a) == value.encode() for a in node.attribute)
    return any(a.name == feature for a in node.attribute)


def to_opset17(model: onnx.ModelProto, path: Path) -> onnx.ModelProto:
    """The model at opset <= 17, or one clear error naming the first node that cannot be relabelled."""
    version = _opset(model)
    if version <= CONVERT_OPSET:
        return model
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            raise EdgekitError(f"node {node.name or node.op_type!r} is in domain {node.domain!r}; only standard "
                               "ONNX ops convert to PyTorch", path=path)
        now = onnx.defs.get_schema(node.op_type, version).since_version
        then = onnx.defs.get_schema(node.op_type, CONVERT_OPSET).since_version
        if now == then:
            continue
        if node.op_type not in _TYPE_ONLY_AFTER_17 or any(_uses(node, f) for f in _TYPE_ONLY_AFTER_17[node.op_type]):
            raise EdgekitError(f"op {node.op_type} (node {node.name!r}) changed meaning after opset 17 and the "
                               f"converter to PyTorch stops at 17; re-export the model with opset_version=17",
                               path=path)
    for o in model.opset_import:
        if o.domain in ("", "ai.onnx"):
            o.version = CONVERT_OPSET
    model.ir_version = min(model.ir_version, 8)
    return model


def _tidy(module):
    """Rewrite two onnx2torch modules that pruning and torch.export cannot see through, when their second input
    is a constant: PRelu's slope becomes an nn.PReLU weight (so torch-pruning prunes it with its channels), and
    Reshape's target shape a Python tuple (onnx2torch tests it for zeros at run time, a data-dependent branch
    torch.export refuses)."""
    import torch
    from torch import nn

    graph = module.graph
    for node in list(graph.nodes):
        if node.op != "call_module" or len(node.args) != 2 or getattr(node.args[1], "op", None) != "get_attr":
            continue
        kind = type(module.get_submodule(node.target)).__name__
        value = _attr(module, node.args[1].target)
        if kind == "OnnxPReLU" and value.ndim >= 1 and all(d == 1 for d in value.shape[1:]):
            prelu = nn.PReLU(value.shape[0])
            with torch.no_grad():
                prelu.weight.copy_(value.reshape(-1))
            module.add_submodule(node.target, prelu)
            node.args = (node.args[0],)
        elif kind == "OnnxReshape":
            shape = [int(v) for v in value.tolist()]
            if shape and shape[0] == 0 and -1 not in shape:
                shape[0] = -1  # "copy the batch dimension"
            if 0 in shape:
                continue
            with graph.inserting_before(node):
                new = graph.call_function(torch.reshape, (node.args[0], tuple(shape)))
            node.replace_all_uses_with(new)
            graph.erase_node(node)
    graph.eliminate_dead_code()
    module.recompile()
    return module


def _attr(module, target: str):
    obj = module
    for part in target.split("."):
        obj = getattr(obj, part)
    return obj


def onnx_to_torch(path: Path, check_inputs: np.ndarray):
    """Convert, then check the torch module against ONNX Runtime on `check_inputs` (model-ready floats)."""
    import onnxslim
    import torch

    from ..runtime.ort import OrtSession

    _torchvision_stand_in()
    try:
        import onnx2torch
    except ImportError:
        raise EdgekitError("pruning, QAT or a TFLite export of an ONNX model converts it to PyTorch with onnx2torch: "
                           "pip install --no-deps onnx2torch", path=path) from None

    try:
        model = to_opset17(onnxslim.slim(onnx.load(str(path))), path)
        module = _tidy(onnx2torch.convert(model)).eval()
    except EdgekitError:
        raise
    except NotImplementedError as exc:
        raise EdgekitError(f"cannot convert to PyTorch: {str(exc).splitlines()[0]}", path=path) from None
    except Exception as exc:  # noqa: BLE001 - any converter failure is a property of the user's file
        raise EdgekitError(f"cannot convert to PyTorch ({exc.__class__.__name__}: {str(exc).splitlines()[0]})",
                           path=path) from None
    want = OrtSession(path, threads=None).run(check_inputs)
    with torch.no_grad():
        got = module(torch.from_numpy(check_inputs))
    got = [got] if isinstance(got, torch.Tensor) else list(got)
    for i, (a, b) in enumerate(zip(want, got, strict=True)):
        scale = max(float(np.abs(a).max()), 1e-6)
        err = float(np.abs(a - b.numpy()).max()) / scale
        if err > PARITY_TOLERANCE:
            raise EdgekitError(f"converted PyTorch model differs from ONNX Runtime on output {i} by {err:.2g} of its "
                               f"scale (tolerance {PARITY_TOLERANCE}); this model cannot be pruned or trained in "
                               "PyTorch", path=path)
    return module
