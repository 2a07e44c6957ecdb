import os
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


@pytest.fixture
def cli():
    return run_cli


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory):
    """A quarter-width mobile model trained for a few steps: enough structure for every stage, in seconds."""
    from edgekit.models.checkpoint import save_checkpoint
    from edgekit.train.loop import FitConfig
    from edgekit.train.teacher import TeacherTrainConfig, train_teacher

    cfg = TeacherTrainConfig(arch="mobile", arch_kwargs={"width": 0.25}, batch_size=16, val_size=32, test_size=32,
                             workers=0, fit=FitConfig(epochs=1, steps_per_epoch=4, lr=3e-3))
    model, meta, _ = train_teacher(cfg, progress=False)
    path = tmp_path_factory.mktemp("teacher") / "tiny.safetensors"
    save_checkpoint(path, model, meta)
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
