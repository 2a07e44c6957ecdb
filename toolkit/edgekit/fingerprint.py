"""What machine and software a result came from: versions, runtimes, CPU flags, GPU.

The standard library and the runtime registry only: the device-side bench runner uses this too. Versions come
from package metadata and importability from `find_spec`, so no runtime library is imported.
"""

from __future__ import annotations

import importlib.metadata
import os
import platform
import shutil
import subprocess

# What compress itself runs on; each runtime and format adds its own packages (their registry rows).
BUILD_PACKAGES = ("torch", "torch-pruning", "onnx", "onnxruntime", "onnxslim")
CORE_PACKAGES = ("edgekit", "numpy", *BUILD_PACKAGES, "opencv-python-headless")
# CPU features that decide which INT8/FP16 kernels a runtime can use.
CPU_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8", "asimddp", "i8mm", "fphp", "sve")


def _registered_packages() -> tuple[str, ...]:
    """The runtimes' and formats' packages. The device-side runner carries the runtime registry but no
    exporters, so there the formats' converters are simply not listed."""
    from .runtime.registry import runtime_packages

    try:
        from .formats import formats

        converters = tuple(p for f in formats().values() for p in f.packages)
    except ImportError:
        converters = ()
    return (*runtime_packages(), *converters)


def packages() -> tuple[str, ...]:
    return tuple(dict.fromkeys((*CORE_PACKAGES, *_registered_packages())))


def package_versions() -> dict[str, str | None]:
    out = {}
    for name in packages():
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def keyed_versions() -> dict[str, str | None]:
    """What builds or runs an artifact: a new release of any of them can change the file or its numbers, so cache
    keys (compress stages, exports) include their versions and a rerun after an upgrade rebuilds."""
    versions = package_versions()
    return {name: versions.get(name) for name in dict.fromkeys((*BUILD_PACKAGES, *_registered_packages()))}


def available_runtimes() -> dict[str, bool]:
    """Runtime family -> installed here."""
    from .runtime.registry import installed_families

    return installed_families()


def cpu_info() -> dict:
    """The CPU as a latency figure depends on it: model name and its family/model/stepping (a bare "AMD EPYC"
    names a dozen generations), flags, cores, clock and cache, and the frequency governor where it is readable."""
    model, flags, ident, extra = platform.processor() or platform.machine(), set(), {}, {}
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                key, _, value = line.partition(":")
                key, value = key.strip(), value.strip()
                if key in ("model name", "Model", "Hardware") and model in ("", platform.machine(), "x86_64"):
                    model = value
                elif key in ("flags", "Features"):
                    flags.update(value.split())
                elif key in ("cpu family", "model", "stepping", "CPU implementer", "CPU part", "CPU variant") \
                        and key not in ident:
                    ident[key] = value
                elif key in ("cpu MHz", "cache size") and key not in extra:
                    extra[key] = value
    except OSError:
        pass
    return {
        "model": model,
        "arch": platform.machine(),
        "cores": os.cpu_count(),
        "flags": [f for f in CPU_FLAGS if f in flags],
        "id": "/".join(f"{k}={v}" for k, v in ident.items()) or None,
        "mhz": _number(extra.get("cpu MHz")),
        "cache": extra.get("cache size"),
        "governor": _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor"),
        "max_khz": _number(_read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")),
    }


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8") as fh:
            return fh.read().strip() or None
    except OSError:
        return None


def _number(text: str | None) -> float | None:
    try:
        return round(float(text), 1) if text else None
    except ValueError:
        return None


def normalized_arch(machine: str | None) -> str | None:
    """`platform.machine()` spellings -> a target's `hardware.arch` (x86_64 or arm64)."""
    m = (machine or "").lower()
    return {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64"}.get(m, m or None)


def gpu_info() -> list[dict]:
    """GPUs from nvidia-smi (no CUDA import needed); empty when there is none."""
    if shutil.which("nvidia-smi") is None:
        return []
    try:
        text = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout
    except (subprocess.SubprocessError, OSError):
        return []
    gpus = []
    for line in text.strip().splitlines():
        name, driver, mem = (p.strip() for p in line.split(",", 2))
        gpus.append({"name": name, "driver": driver, "memory": mem})
    return gpus


def _command(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    except (subprocess.SubprocessError, OSError):
        return None
    return (proc.stdout or proc.stderr).strip() or None


def jetson_info() -> dict | None:
    """L4T release, power mode and clock state on a Jetson (None elsewhere): they change latency by 2-4x."""
    try:
        with open("/etc/nv_tegra_release", encoding="utf-8") as fh:
            l4t = fh.readline().strip()
    except OSError:
        return None
    nvp = _command(["nvpmodel", "-q"])
    clocks = _command(["jetson_clocks", "--show"])
    return {
        "l4t": l4t,
        "jetpack": _dpkg_version("nvidia-jetpack"),
        "nvpmodel": nvp.splitlines()[0] if nvp else None,
        # `jetson_clocks --show` prints current vs max frequencies; pinned clocks show MinFreq == MaxFreq.
        "jetson_clocks": clocks,
    }


def _dpkg_version(package: str) -> str | None:
    out = _command(["dpkg-query", "-W", "-f=${Version}", package])
    return out if out and "no packages" not in out.lower() else None


def fingerprint() -> dict:
    out = {
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu": cpu_info(),
        "gpu": gpu_info(),
        "packages": package_versions(),
        "runtimes": available_runtimes(),
    }
    jetson = jetson_info()
    if jetson:
        out["jetson"] = jetson
    return out
