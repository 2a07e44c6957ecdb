"""ONNX: the float model as exported by the compress stages, FP16 by conversion, INT8 as the quantize stage's QDQ
model (asymmetric for ONNX Runtime on CPU, symmetric where TensorRT reads it)."""

from __future__ import annotations

from pathlib import Path

from ...formats import Format, register_format

_ONNX_INT8_OPS = {"QuantizeLinear", "DequantizeLinear", "QLinearConv", "QLinearMatMul", "ConvInteger",
                  "MatMulInteger", "DynamicQuantizeLinear", "QLinearAdd", "QGemm"}


class OnnxFormat(Format):
    name = "onnx"
    suffixes = (".onnx",)
    description = "ONNX (QDQ for INT8)"
    packages = ("onnx", "onnxslim")
    int8_from_qdq = True

    def filename(self, precision, variant=None):
        if precision == "int8" and variant == "sym":  # model.int8.onnx is the CPU (asymmetric) one
            return "model.int8.sym.onnx"
        return super().filename(precision)

    def variant(self, target, precision):
        return target.int8_scheme if precision == "int8" else None

    def build(self, planned, src, out_dir, targets, progress=False):
        from ...atomic import write_bytes
        from ...convert.fp16 import onnx_to_fp16
        from ..tensorrt_build import qdq_zero_points_are_zero

        path = out_dir / planned.filename
        extra: dict = {}
        if planned.precision == "fp32":
            write_bytes(path, src.fp32_onnx.read_bytes())
        elif planned.precision == "int8":
            extra["int8_scheme"], source = src.int8_source(planned.variant)  # a recipe may force one for all
            write_bytes(path, source.read_bytes())
        else:
            onnx_to_fp16(src.fp32_onnx, path)
        extra = {"io": onnx_io(path), **extra}
        if planned.precision == "int8" and any(t.symmetric_int8 for t in targets):
            ok, bad = qdq_zero_points_are_zero(path)
            extra["tensorrt_qdq_symmetric"] = ok
            if not ok:
                raise RuntimeError(f"Q/DQ zero-points must be 0 for TensorRT; non-zero at {bad[:3]}")
        return path, extra

    def precision_of(self, path: Path) -> str | None:
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


def onnx_io(path: Path) -> dict:
    """Input and output names, shapes and dtypes, for the sidecar."""
    import onnx

    g = onnx.load(str(path)).graph

    def describe(v) -> dict:
        t = v.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in t.shape.dim]
        return {"name": v.name, "shape": dims, "dtype": onnx.helper.tensor_dtype_to_np_dtype(t.elem_type).name}

    return {"inputs": [describe(v) for v in g.input], "outputs": [describe(v) for v in g.output]}


register_format(OnnxFormat())
