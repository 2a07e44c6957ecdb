"""Data-parallel training under torchrun on loopback, at 2 processes (gloo, 1 thread each): 2 cores are not a
cluster, but the process group, the sharding, the gradient averaging and the BatchNorm synchronisation are the
ones a multi-GPU or multi-node job runs."""

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

from conftest import TESTS, TINY_DATA, onnx_only_cpu_target

ENV = {**os.environ, "PYTHONPATH": str(TESTS), "OMP_NUM_THREADS": "1"}


def probe(tmp_path: Path, nproc: int, *flags: str) -> dict:
    out = tmp_path / f"p{nproc}{''.join(flags)}.safetensors"
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
                        str(TESTS / "ddp_probe.py"), str(out), *flags], env=ENV, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return load_file(str(out))


@pytest.mark.scale_out
def test_two_processes_train_like_one_with_the_same_global_batch(tmp_path):
    """4 AdamW steps, global batch 8: 1 process against 2 (4 images each). Tolerance: the ranks' gradients are
    summed in another order and the synchronised BatchNorm takes E[x^2] - E[x]^2 instead of a two-pass variance,
    so gradients differ by ~1e-7 relative; AdamW divides each step by sqrt(v), which turns that into up to 2 x lr
    on a parameter whose gradient is near zero (and the BatchNorm statistics after it follow). Hence, per tensor,
    the median distance within 1e-3 of the tensor's own update (measured: 1.6e-5 for weights, 3.6e-7 for running
    statistics), and every weight within 2 x lr x steps. Without synchronised BatchNorm the same medians are
    1.3 and 0.024: the check tells the two apart."""
    one, two, unsynced = probe(tmp_path, 1), probe(tmp_path, 2), probe(tmp_path, 2, "--no-sync-bn")
    names = [k for k in one if not k.startswith("init.") and one[k].dtype.kind == "f"]
    stats = [k for k in names if "running_" in k]
    params = [k for k in names if k not in stats]

    def median_rel(a: dict, keys: list[str]) -> float:
        """Median over tensors of |a - one| / |one's update| (tensors that did not move are left out)."""
        moved = [k for k in keys if np.linalg.norm(one[k] - one[f"init.{k}"]) > 0]
        return float(np.median([np.linalg.norm(a[k] - one[k]) / np.linalg.norm(one[k] - one[f"init.{k}"])
                                for k in moved]))

    assert median_rel(two, params) <= 1e-3 and median_rel(two, stats) <= 1e-3
    assert max(float(np.abs(two[k] - one[k]).max()) for k in params) <= 2 * 1e-3 * 4
    # Without the synchronisation each rank normalises by its own half-batch: the runs part ways.
    assert median_rel(unsynced, params) > 0.1 and median_rel(unsynced, stats) > 1e-2


def _rank_pids(parent: int) -> dict[int, int]:
    """RANK -> pid of the training processes under `parent` (read from /proc)."""
    found = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            env = dict(kv.split("=", 1) for kv in (d / "environ").read_bytes().decode(errors="replace").split("\0")
                       if "=" in kv)
            ppid = int((d / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if "RANK" in env and "LOCAL_WORLD_SIZE" in env and ppid == parent:
            found[int(env["RANK"])] = int(d.name)
    return found


@pytest.mark.scale_out
def test_a_killed_rank_stops_the_job_in_one_line_and_the_run_resumes(tmp_path):
    out = tmp_path / "t.safetensors"
    state = out.with_suffix(".state.safetensors")
    cmd = [sys.executable, "-m", "edgekit", "teacher", "train", "--arch", "mobile", "--width", "0.25", "--epochs",
           "2", "--steps-per-epoch", "10", "--batch-size", "8", "--workers", "0", "--nproc", "2", "--out", str(out)]
    job = subprocess.Popen(cmd, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 180
        while not state.exists() and time.time() < deadline and job.poll() is None:  # epoch 1 is saved
            time.sleep(0.05)
        ranks = _rank_pids(job.pid)
        assert state.exists() and set(ranks) == {0, 1}, ranks
        os.kill(ranks[1], signal.SIGKILL)
        killed = time.time()
        _, err = job.communicate(timeout=120)
    finally:
        job.kill()
    assert job.returncode == 1 and time.time() - killed < 60
    lines = [ln for ln in err.splitlines() if ln.startswith("error:")]
    assert len(lines) == 1 and "rank 1" in lines[0] and "SIGKILL" in lines[0], err[-2000:]
    assert not out.exists()  # rank 0 never wrote a checkpoint from a broken job
    done = subprocess.run([*cmd, "--resume"], env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.exists() and not state.exists()
    assert "epoch 1/2" not in done.stdout + done.stderr and "epoch 2/2" in done.stdout + done.stderr


@pytest.mark.scale_out
def test_compress_stages_under_torchrun_train_like_one_process_and_rank_0_alone_writes(tiny_teacher, tmp_path):
    """`edgekit compress --nproc 2`: distill and the prune fine-tuning on 2 ranks (each its half of every batch)
    against 1 process; PTQ runs on rank 0 and the other rank loads its result. Tolerance as for the training loop
    (reduction order, one-pass BatchNorm variance through AdamW): measured median 5e-4 of each tensor's norm after
    distill and 1.5e-3 after pruning, NMEs within 4e-5."""
    data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: ddp\nteacher: {tiny_teacher}\nstudent: {{arch: mobile, width: 0.25}}\n"
                      f"data: {{{data}}}\nstages:\n"
                      "  - distill: {pool: 0, epochs: 1, steps_per_epoch: 3, batch_size: 8}\n"
                      "  - prune: {steps: 1, target: {channel_ratio: 0.7}, "
                      "finetune: {epochs: 1, steps_per_epoch: 2, batch_size: 8}}\n"
                      "  - quantize: {calibration: {images: 40}}\n")
    private_tmp = tmp_path / "tmp"
    private_tmp.mkdir()
    env = {**ENV, "TMPDIR": str(private_tmp)}

    def compress(run: str, *extra: str) -> dict:
        r = subprocess.run([sys.executable, "-m", "edgekit", "compress", "--recipe", str(recipe), "--target",
                            str(onnx_only_cpu_target(tmp_path)), "--run-dir", str(tmp_path / run), "--quiet",
                            "--workers", "0", "--no-deploy", *extra], env=env, capture_output=True, text=True,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        return json.loads((tmp_path / run / "manifest.json").read_text())

    one, two = compress("one"), compress("two", "--nproc", "2")
    for stage in ("01-distill", "02-prune"):
        a, b = (load_file(str(tmp_path / run / stage / "model.safetensors")) for run in ("one", "two"))
        assert {k: v.shape for k, v in a.items()} == {k: v.shape for k, v in b.items()}  # the same channels pruned
        floats = [k for k in a if a[k].dtype.kind == "f" and np.linalg.norm(a[k]) > 0]
        assert np.median([np.linalg.norm(a[k] - b[k]) / np.linalg.norm(a[k]) for k in floats]) <= 5e-3, stage
    assert [s["name"] for s in one["steps"]] == [s["name"] for s in two["steps"]]
    for s1, s2 in zip(one["steps"], two["steps"], strict=True):
        assert abs(s1["metrics"]["nme"] - s2["metrics"]["nme"]) <= 4e-4, (s1["name"], s1["metrics"], s2["metrics"])
    # Rank 0 alone wrote: the same files as one process, and nothing of rank 1's left in its private folder.
    files = lambda run: sorted(re.sub(r"\.[0-9a-f]{16}\.", ".<hash>.", str(p.relative_to(tmp_path / run)))  # noqa: E731
                               for p in (tmp_path / run).rglob("*"))  # (calibration caches are named by model)
    assert files("one") == files("two") and not list(private_tmp.glob("edgekit-rank*"))
    # A rerun under torchrun: rank 0's cache decides for both ranks; every stage is cached.
    again = compress("two", "--nproc", "2")
    assert all(s.get("cached") for s in again["steps"]), [(s["name"], s.get("cached")) for s in again["steps"]]


def test_each_rank_gets_its_share_of_every_batch_and_together_they_are_the_whole(tiny_context):
    """The compress stages' batches under torchrun: rank r of N gets items r, r+N, ... of each global batch (and
    renders only those), so the ranks' shares together are the single-process batch, image for image."""
    import torch

    from edgekit.compress.kd_pool import TeacherPool
    from edgekit.train.distributed import World

    whole = [b.images for b in tiny_context.data.train_batches(8, 2)(0)]
    shares = [[b.images for b in tiny_context.data.train_batches(8, 2, World(r, 2, r))(0)] for r in range(2)]
    assert all(len(s) == 2 and s[0].shape[0] == 4 for s in shares)
    for k in range(2):
        assert torch.equal(torch.stack([shares[0][k], shares[1][k]], 1).reshape(whole[k].shape), whole[k])
    pool = TeacherPool(tiny_context, 16, features=False)
    whole = [b.teacher_landmarks for b in pool.batches(8, 2, epoch=1)]
    shares = [[b.teacher_landmarks for b in pool.batches(8, 2, 1, World(r, 2, r))] for r in range(2)]
    for k in range(2):
        assert torch.equal(torch.stack([shares[0][k], shares[1][k]], 1).reshape(whole[k].shape), whole[k])
