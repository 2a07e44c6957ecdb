"""TensorRT engines from the QDQ ONNX: explicit INT8 with FP16 fallback, timing cache, optional DLA.

Where TensorRT or a GPU is missing (CI here), or the target builds on the device (Jetson), this writes the exact
`trtexec` command instead and says so. Engines are specific to the GPU and TensorRT version that built them.
"""

from __future__ import annotations

import importlib.util
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import onnx

from ..atomic import atomic_path, write_bytes, write_text


@dataclass(frozen=True)
class EngineSpec:
    precisions: tuple[str, ...]  # e.g. ("int8", "fp16"): INT8 from the Q/DQ nodes, FP16 for the rest
    input_name: str = "image"
    input_chw: tuple[int, int, int] = (3, 112, 112)
    max_batch: int = 32
    opt_batch: int = 1
    dla_core: int | None = None
    workspace_mib: int = 1024


def tensorrt_available() -> tuple[bool, str]:
    """(usable, why not). Needs the tensorrt module and a visible NVIDIA GPU."""
    if importlib.util.find_spec("tensorrt") is None:
        return False, "the tensorrt Python package is not installed (pip install edgekit[tensorrt])"
    if shutil.which("nvidia-smi") is None:
        return False, "no NVIDIA GPU is visible (nvidia-smi not found)"
    try:
        subprocess.run(["nvidia-smi", "-L"], check=True, capture_output=True, timeout=10)
    except (subprocess.SubprocessError, OSError):
        return False, "nvidia-smi found no usable GPU"
    return True, ""


def _shapes(spec: EngineSpec) -> dict[str, str]:
    c, h, w = spec.input_chw
    return {k: f"{spec.input_name}:{b}x{c}x{h}x{w}"
            for k, b in (("min", 1), ("opt", spec.opt_batch), ("max", spec.max_batch))}


def trtexec_command(onnx_path: str, engine_path: str, spec: EngineSpec, timing_cache: str = "timing.cache",
                    trt_major: int = 10) -> list[str]:
    """The trtexec invocation that builds the same engine on a device.

    TensorRT 10 (JetPack 6) takes the precision flags `--int8 --fp16`: with Q/DQ nodes present, INT8 is explicit
    (scales come from the graph, no calibrator) and FP16 is allowed for layers left in float. TensorRT 11 removed
    those flags; precision comes from the graph, so there the command uses `--stronglyTyped`.
    """
    s = _shapes(spec)
    cmd = ["trtexec", f"--onnx={onnx_path}", f"--saveEngine={engine_path}", f"--timingCacheFile={timing_cache}",
           f"--minShapes={s['min']}", f"--optShapes={s['opt']}", f"--maxShapes={s['max']}",
           f"--memPoolSize=workspace:{spec.workspace_mib}M"]
    if trt_major >= 11:
        cmd.append("--stronglyTyped")
    else:
        cmd += [f"--{p}" for p in ("int8", "fp16") if p in spec.precisions]
    if spec.dla_core is not None:
        cmd += [f"--useDLACore={spec.dla_core}", "--allowGPUFallback"]
    return cmd


def write_build_script(onnx_path: Path, engine_name: str, spec: EngineSpec, out: Path) -> Path:
    """A shell script, run next to the ONNX on the device, that builds the engine with trtexec."""
    cmd = trtexec_command(onnx_path.name, engine_name, spec)
    text = (
        "#!/usr/bin/env sh\n"
        "# Build the TensorRT engine on the device that will run it (TensorRT 10 / JetPack 6).\n"
        "# For TensorRT 11, replace '--int8 --fp16' with '--stronglyTyped'.\n"
        "set -eu\n"
        'cd "$(dirname "$0")"\n'
        'command -v trtexec >/dev/null 2>&1 || PATH="$PATH:/usr/src/tensorrt/bin"\n'
        + " ".join(shlex.quote(c) for c in cmd) + "\n"
    )
    write_text(out, text)
    out.chmod(0o755)
    return out


def build_engine(onnx_path: Path, engine_path: Path, spec: EngineSpec, timing_cache: Path | None = None) -> Path:
    """Build and serialize an engine with the TensorRT Python API (TensorRT 10)."""
    import tensorrt as trt

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    # Explicit batch is the only mode from TensorRT 10 on (the flag is deprecated there); 8.x needs it set.
    explicit = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    flags = 0 if int(trt.__version__.split(".")[0]) >= 10 else explicit
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx.load(str(onnx_path)).SerializeToString()):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT could not parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_mib << 20)
    for p in spec.precisions:
        flag = {"int8": "INT8", "fp16": "FP16"}.get(p)
        if flag and hasattr(trt.BuilderFlag, flag):  # TensorRT 11 takes precision from the graph instead
            config.set_flag(getattr(trt.BuilderFlag, flag))
    if spec.dla_core is not None:
        config.default_device_type = trt.DeviceType.DLA
        config.DLA_core = spec.dla_core
        config.set_flag(trt.BuilderFlag.GPU_FALLBACK)
    profile = builder.create_optimization_profile()
    c, h, w = spec.input_chw
    profile.set_shape(spec.input_name, (1, c, h, w), (spec.opt_batch, c, h, w), (spec.max_batch, c, h, w))
    config.add_optimization_profile(profile)
    cache_bytes = timing_cache.read_bytes() if timing_cache and timing_cache.exists() else b""
    cache = config.create_timing_cache(cache_bytes)
    config.set_timing_cache(cache, ignore_mismatch=False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    with atomic_path(engine_path) as tmp:
        tmp.write_bytes(bytes(serialized))
    if timing_cache is not None:
        write_bytes(timing_cache, bytes(config.get_timing_cache().serialize()))
    return engine_path


def qdq_zero_points_are_zero(onnx_path: Path) -> tuple[bool, list[str]]:
    """TensorRT's explicit quantization needs symmetric Q/DQ: every zero-point 0. Returns (ok, offenders)."""
    model = onnx.load(str(onnx_path))
    inits = {i.name: onnx.numpy_helper.to_array(i) for i in model.graph.initializer}
    bad = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zp = inits.get(node.input[2])
            if zp is None or (zp != 0).any():
                bad.append(node.name)
    return not bad, bad
