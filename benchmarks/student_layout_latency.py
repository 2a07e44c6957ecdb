"""p50 of student shapes against the FP32 teacher, side by side in ONNX Runtime (CPU, 1 thread, batch 1).

    .venv/bin/python benchmarks/student_layout_latency.py [--rounds 3] [--runs 400]

Random weights: latency does not depend on them. Each model is exported with torch.onnx (opset 17) and, for the
students (the MobileNet-like layouts and distill_int8's width-0.25 ResNet), also quantized with
onnxruntime.quantization (per-channel weights, 8 random calibration images: latency only, never accuracy) in the
forms the quantize stage's `ort_format: auto` times: QDQ, and QOperator with the 3-channel stem left in float
(`INT8 qop-fs`). The rounds interleave every model, so drift on a shared machine hits
all of them alike; the table gives each model's median of its round medians and its ratio to the teacher's.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "toolkit"))

from edgekit.compress.quantize import input_convs  # noqa: E402
from edgekit.fingerprint import cpu_info  # noqa: E402
from edgekit.models.registry import build, count_macs_params  # noqa: E402
from edgekit.runtime.ort import OrtSession  # noqa: E402

WIDE_HEAD = {"head_channels": 32, "head_hidden": 256}
TEACHER = "teacher (resnet)"
MODELS = {
    TEACHER: ("resnet", {}),
    "w050": ("mobile", {"width": 0.5}),
    "w075-h32": ("mobile", {"width": 0.75, **WIDE_HEAD}),
    "w075-h32 early-stride": ("mobile", {"width": 0.75, **WIDE_HEAD, "layout": "early-stride"}),
    "w075-h32 early-stride-14": ("mobile", {"width": 0.75, **WIDE_HEAD, "layout": "early-stride-14"}),
    "resnet w025 (distill_int8)": ("resnet", {"width": 0.25}),
    "w100-h32": ("mobile", {"width": 1.0, **WIDE_HEAD}),
    "w100-h32 early-stride": ("mobile", {"width": 1.0, **WIDE_HEAD, "layout": "early-stride"}),
}


def p50_ms(sess: OrtSession, runs: int) -> float:
    x = np.random.default_rng(0).random((1, 3, 112, 112), dtype=np.float32)
    for _ in range(50):
        sess.run(x)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        sess.run(x)
        times.append(time.perf_counter() - start)
    return float(np.median(times)) * 1e3


def int8(fp32: Path) -> dict[str, Path]:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Random(CalibrationDataReader):
        def __init__(self):
            rng = np.random.default_rng(1)
            self.feeds = iter([{"image": rng.random((1, 3, 112, 112), dtype=np.float32)} for _ in range(8)])

        def get_next(self):
            return next(self.feeds, None)

    pre = fp32.with_suffix(".pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    out = {}
    for form, fmt, exclude in (("INT8", QuantFormat.QDQ, []),
                               ("INT8 qop-fs", QuantFormat.QOperator, input_convs(pre))):
        out[form] = fp32.with_suffix(f".{len(out)}.onnx")
        quantize_static(str(pre), str(out[form]), Random(), quant_format=fmt, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8, nodes_to_exclude=exclude)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs", type=int, default=400, help="timed runs per model per round")
    args = ap.parse_args()
    torch.set_num_threads(1)
    rows: dict[str, tuple[float, Path]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for i, (name, (arch, kwargs)) in enumerate(MODELS.items()):
            model = build(arch, **kwargs).eval()
            path = Path(tmp) / f"m{i}.onnx"
            torch.onnx.export(model, torch.zeros(1, 3, 112, 112), str(path), input_names=["image"],
                              opset_version=17, dynamo=False)
            macs = count_macs_params(model)[0] / 1e6
            rows[f"{name} FP32"] = (macs, path)
            if name != TEACHER:
                rows.update({f"{name} {form}": (macs, q) for form, q in int8(path).items()})
        sessions = {k: OrtSession(p, threads=1) for k, (_, p) in rows.items()}  # 1 thread, no spinning
        rounds = {k: [] for k in rows}
        for _ in range(args.rounds):
            for k, sess in sessions.items():
                rounds[k].append(p50_ms(sess, args.runs))
    p50 = {k: float(np.median(v)) for k, v in rounds.items()}
    teacher = p50[f"{TEACHER} FP32"]
    cpu = cpu_info()
    print(f"{cpu['model']} ({cpu['id']}), {cpu['cores']} cores, {' '.join(cpu['flags'])}; "
          f"onnxruntime {ort.__version__}; {args.rounds} rounds x {args.runs} runs\n")
    print("| model | MMACs | p50 ms | x teacher FP32 |\n| --- | --- | --- | --- |")
    for k, (macs, _) in rows.items():
        print(f"| {k} | {macs:.1f} | {p50[k]:.3f} | {p50[k] / teacher:.3f} |")


if __name__ == "__main__":
    main()
