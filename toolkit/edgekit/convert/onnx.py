"""PyTorch -> ONNX: opset 17, named I/O, dynamic batch, checked, shape-inferred, simplified by onnxslim.

Uses torch's TorchScript exporter (`dynamo=False`): it folds BatchNorm into convolutions and needs no extra
packages; the dynamo exporter would add onnxscript. Revisit when torch drops the TorchScript path.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from ..atomic import atomic_path

OPSET = 17


def export_onnx(model: nn.Module, path: str | Path, input_shape: tuple[int, ...], output_names: list[str],
                metadata: dict[str, str] | None = None, input_name: str = "image", simplify: bool = True) -> Path:
    path = Path(path)
    model = model.eval()
    dynamic = {input_name: {0: "batch"}, **{n: {0: "batch"} for n in output_names}}
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(*input_shape),), str(tmp), input_names=[input_name],
                          output_names=list(output_names), opset_version=OPSET, dynamo=False,
                          dynamic_axes=dynamic, do_constant_folding=True)
        proto = onnx.load(str(tmp))
        if simplify:
            import onnxslim

            proto = onnxslim.slim(proto)
        proto = onnx.shape_inference.infer_shapes(proto, strict_mode=True)
        onnx.checker.check_model(proto, full_check=True)
        set_metadata(proto, metadata or {})
        onnx.save(proto, str(tmp))
    return path


def set_metadata(proto: onnx.ModelProto, metadata: dict[str, str]) -> None:
    existing = {p.key: p for p in proto.metadata_props}
    for key, value in metadata.items():
        if key in existing:
            existing[key].value = str(value)
        else:
            proto.metadata_props.add(key=key, value=str(value))
