"""TensorRT engines, built from the ONNX model (INT8: the symmetric QDQ model) here when TensorRT and a GPU are
present, else written as a `trtexec` script for the device (`export/tensorrt_build.py`). An engine is specific
to the GPU and TensorRT version that built it, so its parity is checked where it runs, not here."""

from __future__ import annotations

from ...formats import Format, register_format
from ..sources import BuildOnDevice


class TensorrtFormat(Format):
    name = "tensorrt"
    suffixes = (".engine", ".plan")
    description = "TensorRT engine (built per GPU)"
    packages = ("tensorrt",)
    checked_here = False
    int8_from_qdq = True
    symmetric_int8 = True

    def variant(self, target, precision):
        return target.int8_scheme if precision == "int8" else None

    def build(self, planned, src, out_dir, targets, progress=False):
        from ...atomic import write_bytes
        from ..tensorrt_build import EngineSpec, build_engine, tensorrt_available, write_build_script

        onnx_src = src.int8_source(planned.variant)[1] if planned.precision == "int8" else src.fp32_onnx
        onnx_copy = out_dir / f"engine-input.{planned.precision}.onnx"
        write_bytes(onnx_copy, onnx_src.read_bytes())
        users = [t for t in targets if self.name in t.formats]
        dla = next((t.dla_core for t in users if t.dla_core is not None), None)
        spec = EngineSpec(("int8", "fp16") if planned.precision == "int8" else ("fp16",),
                          input_chw=tuple(src.input_shape[1:]), dla_core=dla)
        script = write_build_script(onnx_copy, planned.filename, spec, out_dir / f"build_engine.{planned.precision}.sh")
        on_device = all(t.build == "on-device" for t in users)
        usable, why = tensorrt_available()
        if on_device or not usable:
            raise BuildOnDevice(script, "engines are built on the device that runs them" if on_device else why)
        engine = build_engine(onnx_copy, out_dir / planned.filename, spec, out_dir / "timing.cache")
        return engine, {"build_script": script.name}


register_format(TensorrtFormat())
