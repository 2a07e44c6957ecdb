"""TFLite (LiteRT): converted from the PyTorch model by litert-torch; INT8 through PT2E, with the layers that must
stay float to meet the NME budget chosen on labeled images and checked on the converted file
(`export/tflite_int8.py`)."""

from __future__ import annotations

from pathlib import Path

from ...formats import Format, register_format


class TfliteFormat(Format):
    name = "tflite"
    suffixes = (".tflite",)
    description = "TFLite flatbuffer (LiteRT)"
    packages = ("litert-torch", "ai-edge-litert")
    from_torch = True

    def serves(self, target, precision):
        # FP16 TFLite is for CPU delegates (XNNPACK); a GPU target runs FP16 through its own formats.
        return not (precision == "fp16" and target.has_gpu)

    def build(self, planned, src, out_dir, targets, progress=False):
        from ..tflite_convert import export_tflite, io_details
        from ..tflite_int8 import convert_within_budget

        path = out_dir / planned.filename
        extra: dict = {}
        if planned.precision == "int8" and src.selection is not None and src.nme_budget is not None:
            def convert(float_modules: list[str]) -> None:
                export_tflite(src.float_model, path, src.input_shape, "int8", calibration=src.calibration,
                              float_modules=float_modules)

            # The file is converted until it passes the parity check that follows on the same images.
            check = (src.samples, src.labels) if src.labels is not None else None
            choice = convert_within_budget(src.float_model, path, convert, src.input_shape, src.calibration,
                                           *src.selection, src.nme_budget, src.max_float_layers, progress=progress,
                                           max_params=src.max_float_params, contract=src.contract,
                                           absolute=src.absolute_budget, check=check)
            extra["fallback"] = choice.as_dict()
        else:
            export_tflite(src.float_model, path, src.input_shape, planned.precision, calibration=src.calibration)
        return path, {"io": io_details(path), **extra}

    def precision_of(self, path: Path) -> str | None:
        try:
            from ...runtime.litert import interpreter_class

            details = interpreter_class()(model_path=str(path)).get_tensor_details()
        except Exception:  # noqa: BLE001 - no interpreter here, or not a model: fall back
            return None
        dtypes = {str(getattr(d["dtype"], "__name__", d["dtype"])) for d in details}
        if dtypes & {"int8", "uint8"}:
            return "int8"
        return "fp16" if "float16" in dtypes else "fp32"


register_format(TfliteFormat())
