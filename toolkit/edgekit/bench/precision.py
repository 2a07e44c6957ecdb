"""An artifact's precision, read from the model itself, not from its file name (host side).

A QDQ ONNX model named `pct_pc.onnx` is INT8 whatever it is called; a name or a sidecar is used only when the
graph cannot be read here (a TensorRT engine, a runtime that is not installed).
"""

from __future__ import annotations

from pathlib import Path

from ..formats import precision_in_name

_ONNX_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                  "MatMulInteger", "DynamicQuantizeLinear", "QLinearAdd", "QGemm"}


def onnx_precision(path: Path) -> str | None:
    try:
        import onnx

        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - unreadable here: the caller falls back to the sidecar
        return None
    g = model.graph
    if any(n.op_type in _ONNX_INT8_OPS for n in g.node):
        return "int8"
    f16 = onnx.TensorProto.FLOAT16
    if any(t.data_type == f16 for t in g.initializer) or any(
            n.op_type == "Constant" and any(a.t.data_type == f16 for a in n.attribute) for n in g.node):
        return "fp16"
    return "fp32"


def tflite_precision(path: Path) -> str | None:
    try:
        from ..runtime.litert import interpreter_class

        interp = interpreter_class()(model_path=str(path))
        details = interp.get_tensor_details()
    except Exception:  # noqa: BLE001 - no interpreter here, or not a model: fall back
        return None
    dtypes = {str(getattr(d["dtype"], "__name__", d["dtype"])) for d in details}
    if dtypes & {"int8", "uint8"}:
        return "int8"
    if "float16" in dtypes:
        return "fp16"
    return "fp32"


def precision_of(path: Path, sidecar: dict) -> str:
    found = None
    if path.exists():
        found = {".onnx": onnx_precision, ".tflite": tflite_precision}.get(path.suffix, lambda _: None)(path)
    if found:
        return found
    if sidecar.get("precision"):
        return sidecar["precision"]
    return precision_in_name(path)
