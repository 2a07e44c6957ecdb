"""A wheel built from this checkout, installed into a fresh virtualenv outside it, works as a user's install.

The new environment gets edgekit from the wheel alone; its dependencies come from the test's own environment
through a .pth line (a plain path: the editable install's hooks there are not run), so the test needs no network.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

from conftest import ROOT


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy, so the checkout gets no build/ or egg-info
    for rel in ("pyproject.toml", "README.md", "recipes", "targets", "toolkit/edgekit"):
        s, d = ROOT / rel, src / rel
        if s.is_dir():
            shutil.copytree(s, d, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            d.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(s, d)
    dist = tmp / "dist"
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                            str(src), "-w", str(dist)], capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    wheel = next(dist.glob("edgekit-*.whl"))
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / "bin" / "python"
    site_dir = Path(subprocess.check_output([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                                            text=True).strip())
    r = subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps", str(wheel)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    (site_dir / "_deps_from_test_env.pth").write_text(sysconfig.get_path("purelib") + "\n")
    work = tmp / "elsewhere"
    work.mkdir()
    return env_dir, work


def run(installed, *args):
    env_dir, work = installed
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "EDGEKIT_RECIPES", "EDGEKIT_TARGETS")}
    env["COLUMNS"] = "200"
    return subprocess.run([str(env_dir / "bin" / "edgekit"), *args], capture_output=True, text=True, cwd=work,
                          env=env, timeout=600)


def test_the_wheel_is_what_runs(installed):
    env_dir, work = installed
    out = subprocess.check_output([str(env_dir / "bin" / "python"), "-c", "import edgekit; print(edgekit.__file__)"],
                                  cwd=work, text=True, env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert out.strip().startswith(str(env_dir)), out


def test_recipes_and_targets_ship_with_the_wheel(installed):
    r = run(installed, "recipes", "list")
    assert r.returncode == 0, r.stderr
    for name in ("distill_int8", "prune_int8", "ptq_int8", "fp16", "distill_prune_int8"):
        assert name in r.stdout
    r = run(installed, "targets", "list")
    assert r.returncode == 0 and all(t in r.stdout for t in ("cpu", "gpu", "jetson", "mobile")), r.stderr
    r = run(installed, "compress", "--recipe", "ptq_int8", "--help")
    assert r.returncode == 0 and "--recipe" in r.stdout


def test_a_tiny_fp16_compress_from_the_installed_wheel(installed):
    _, work = installed
    (work / "tiny_fp16.yaml").write_text(
        "name: tiny_fp16\nteacher: zoo:facial68-teacher\n"
        "data: {train: 'synth:train:16', val: 'synth:val:16', eval: 'synth:test:16', calibration: 'synth:train:16'}\n"
        "stages:\n  - fp16: {keep_io_types: true}\n")
    (work / "onnx_cpu.yaml").write_text("name: onnx_cpu\nhardware: {kind: cpu}\nruntimes: [onnxruntime]\n"
                                        "formats: [onnx]\nprecision: [fp16]\nthreads: 1\n")
    r = run(installed, "compress", "--recipe", "tiny_fp16.yaml", "--target", "onnx_cpu.yaml", "--workers", "0",
            "--quiet")
    assert r.returncode == 0, r.stdout + r.stderr
    assert (work / "runs/tiny_fp16/manifest.json").exists()
    assert list((work / "runs/tiny_fp16/exports").glob("*.onnx"))
