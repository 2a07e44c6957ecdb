import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


def run_cli(*args: str, cwd: Path | None = None, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    """Run the real `edgekit` entry point in a subprocess, as a user would."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(TESTS), env.get("PYTHONPATH", "")])
    env.setdefault("COLUMNS", "200")
    env.update(env_extra or {})
    return subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True,
                          cwd=cwd or ROOT, env=env, timeout=600)


def pytest_collection_modifyitems(config, items):
    """The tests on the shared compress run open the second half of the list. pytest-xdist (worksteal) hands
    each of the two workers a contiguous half, so the second builds the run first thing while the first works
    through tests that never need it, and steals only later, when the run is there. Before, both halves opened
    with such tests and one worker sat on the lock for 80 s of a 15-minute suite."""
    shared = [i for i in items if "tiny_run" in getattr(i, "fixturenames", ())]
    others = [i for i in items if "tiny_run" not in getattr(i, "fixturenames", ())]
    half = min(len(items) // 2, len(others))
    items[:] = others[:half] + shared + others[half:]


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """The latency table (and any other cache) goes to a test folder, never the user's ~/.cache."""
    os.environ["EDGEKIT_CACHE_DIR"] = str(tmp_path_factory.mktemp("cache"))


@pytest.fixture
def cli():
    return run_cli


def built_once(tmp_path_factory, name: str, build) -> Path:
    """A folder `build(folder)` fills once per test session, shared by every pytest-xdist worker: the first to
    ask builds it under a file lock, the others wait and reuse it. Tests copy it before changing anything."""
    from filelock import FileLock

    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # the session's folder, above each worker's own
    folder = root / f"shared-{name}"
    with FileLock(str(folder) + ".lock"):
        if not (folder / ".built").exists():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir()
            build(folder)
            (folder / ".built").touch()
    return folder


def _train_tiny_teacher(folder: Path) -> None:
    from edgekit.models.checkpoint import save_checkpoint
    from edgekit.train.loop import FitConfig
    from edgekit.train.teacher import TeacherTrainConfig, train_teacher

    cfg = TeacherTrainConfig(arch="mobile", arch_kwargs={"width": 0.25}, batch_size=16, val_size=32, test_size=32,
                             workers=0, fit=FitConfig(epochs=1, steps_per_epoch=4, lr=3e-3))
    model, meta, _ = train_teacher(cfg, progress=False)
    save_checkpoint(folder / "tiny.safetensors", model, meta)


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    """A quarter-width mobile model trained for a few steps: enough structure for every stage, in seconds."""
    return built_once(tmp_path_factory, "teacher", _train_tiny_teacher) / "tiny.safetensors"


def other_arch() -> str:
    """An architecture this machine is not: a target declaring it is measured elsewhere (a proxy) here."""
    import platform

    from edgekit.fingerprint import normalized_arch

    return "x86_64" if normalized_arch(platform.machine()) == "arm64" else "arm64"


def onnx_only_cpu_target(folder: Path) -> Path:
    """A CPU target with ONNX only, for tests whose subject is not TFLite (its conversions are the slow exports)."""
    path = folder / "cpu-onnx.yaml"
    path.write_text("name: cpu-onnx\nhardware: {kind: cpu, arch: any, accelerator: none}\nruntimes: [onnxruntime]\n"
                    "formats: [onnx]\nprecision: [fp32, int8]\nthreads: 1\n")
    return path


TINY_DATA = {"train": "synth:train", "val": "synth:val:32", "eval": "synth:test:32", "calibration": "synth:train:40"}


@pytest.fixture
def tiny_context(tiny_teacher, tmp_path):
    from edgekit.compress.context import StageContext
    from edgekit.config.recipe import DataSpec
    from edgekit.models.checkpoint import load_checkpoint

    model, meta = load_checkpoint(tiny_teacher)
    return StageContext(teacher=model, meta=meta, data=DataSpec(**TINY_DATA), run_dir=tmp_path, progress=False,
                        workers=0)


TINY_RUN_TARGETS = "cpu,mobile,jetson"


@pytest.fixture(scope="session")
def tiny_run(tiny_teacher, tmp_path_factory):
    """A finished compress run for cpu, mobile and jetson (teacher reference; ONNX FP32, FP16, INT8 asymmetric and
    symmetric; TFLite FP32/INT8; TensorRT build scripts; deploy.json) for the export, deploy, bench and gate tests.
    Shared by every test: copy it before changing it."""
    def build(root: Path) -> None:
        data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
        (root / "r.yaml").write_text(f"name: t\nteacher: {tiny_teacher}\ndata: {{{data}}}\nstages:\n"
                                     "  - quantize: {calibration: {images: 40}}\n")
        r = run_cli("compress", "--recipe", str(root / "r.yaml"), "--target", TINY_RUN_TARGETS, "--run-dir",
                    str(root / "run"), "--quiet", "--workers", "0")
        assert r.returncode == 0, r.stderr
        (root / "compress.stdout").write_text(r.stdout)
        (root / "compress.stderr").write_text(r.stderr)

    return built_once(tmp_path_factory, "tiny_run", build) / "run"


@pytest.fixture(scope="session")
def sshd(tmp_path_factory):
    """A real sshd on loopback (skips where OpenSSH's server is not installed; .ci/run installs it)."""
    import sshd as server

    if server.SSHD is None:
        pytest.skip("openssh-server is not installed (apt-get install openssh-server; .ci/run does)")
    proc, config = server.start(tmp_path_factory.mktemp("sshd"))
    yield server.ALIAS, config
    proc.terminate()
    proc.wait(timeout=10)
