"""TFLite through litert-torch: FP32 parity, FP16 weights, and full-integer INT8 that runs with int8 input."""

import numpy as np
import pytest

from edgekit.export.parity import parity
from edgekit.export.tflite import export_tflite, io_details
from edgekit.runtime.litert import LiteRTSession


@pytest.fixture(scope="module")
def student(tiny_teacher):
    from edgekit.models.checkpoint import load_checkpoint

    return load_checkpoint(tiny_teacher)[0]


@pytest.fixture(scope="module")
def images():
    from edgekit.data import SynthFaces
    from edgekit.data.batches import collate

    ds = SynthFaces("val", length=16)
    batch = collate([ds[i] for i in range(16)])
    return batch.images.numpy(), batch.landmarks.numpy()


def test_tflite_fp32_matches_pytorch(student, images, tmp_path):
    x, labels = images
    path = export_tflite(student, tmp_path / "m.tflite", (1, 3, 112, 112), "fp32")
    result = parity(LiteRTSession(path).run, student, x, "fp32", labels)
    assert result["passed"] and result["landmarks_max_abs_diff"] <= 1e-4
    assert result["state_agreement"] == 1.0


def test_tflite_fp16_halves_the_file_and_stays_close(student, images, tmp_path):
    x, _ = images
    fp32 = export_tflite(student, tmp_path / "m32.tflite", (1, 3, 112, 112), "fp32")
    fp16 = export_tflite(student, tmp_path / "m16.tflite", (1, 3, 112, 112), "fp16")
    assert fp16.stat().st_size < 0.7 * fp32.stat().st_size
    assert parity(LiteRTSession(fp16).run, student, x, "fp16")["landmarks_max_abs_diff"] < 1e-2


def test_tflite_int8_takes_int8_input_and_runs_in_litert(student, images, tmp_path):
    x, labels = images
    path = export_tflite(student, tmp_path / "m8.tflite", (1, 3, 112, 112), "int8", calibration=x)
    io = io_details(path)
    assert io["inputs"][0]["dtype"] == "int8" and "scale" in io["inputs"][0]["quantization"]
    assert all(o["dtype"] == "int8" for o in io["outputs"])
    session = LiteRTSession(path)
    raw = session.interpreter
    q = np.clip(np.round(x[:1] / io["inputs"][0]["quantization"]["scale"])
                + io["inputs"][0]["quantization"]["zero_point"], -128, 127).astype(np.int8)
    raw.set_tensor(session.inp["index"], q)  # a device feeding int8 directly
    raw.invoke()
    assert raw.get_tensor(session.outs[0]["index"]).dtype == np.int8
    result = parity(session.run, student, x, "int8", labels)
    assert result["passed"] and result["nme_vs_pytorch"] < 0.05 and result["state_agreement"] >= 0.8
