"""A device fleet: two loopback hosts (two real sshd, each pinned to its own core) benched at once; a host slowed
on purpose (a CPU burner on its core, bounded in time) is named the outlier, and the deploy decision is the class
median's and says which host would have chosen otherwise."""

import json
import os
import platform
import shutil
import subprocess
import sys

import pytest

from edgekit.bench.deploy import decide
from edgekit.config.catalog import find
from edgekit.config.target import load_target
from edgekit.fingerprint import normalized_arch

BURN_S = 240  # the burner's bound: it ends by itself even if the test dies before killing it
# Spin 100 us, sleep 100 us, at real-time priority where allowed (root, as in CI): each wake-up preempts the
# runner in the middle of an inference, as a noisy neighbour does, whatever else the machine runs (measured: p50
# 0.39 -> 0.76 ms). A plain spinner takes whole scheduler slices, which a sub-millisecond inference mostly fits
# between, so it barely moves the p50 (0.389 -> 0.392 ms); and without the priority, the test suite's own load
# on the same core took the duty cycle's bite away in one run.
BURNER = ("import time\nt = time.time()\nwhile time.time() - t < {s}:\n    s = time.perf_counter()\n"
          "    while time.perf_counter() - s < 1e-4:\n        pass\n    time.sleep(1e-4)\n")


def pin_and_lift(core: int) -> None:
    """The burner's process: on `core` only, and at real-time priority 1 where the user may set it."""
    os.sched_setaffinity(0, {core})
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(1))
    except PermissionError:
        pass


@pytest.fixture
def two_hosts(tmp_path):
    import sshd as server

    if server.SSHD is None:
        pytest.skip("openssh-server is not installed (apt-get install openssh-server; .ci/run does)")
    if len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores to pin one host to each")
    cores = sorted(os.sched_getaffinity(0))[:2]
    procs, configs = [], []
    for i, (alias, core) in enumerate((("fleet-a", cores[0]), ("fleet-b", cores[1]))):
        folder = tmp_path / f"sshd-{i}"
        folder.mkdir()
        proc, config = server.start(folder, alias=alias, cpus={core})
        procs.append(proc)
        configs.append(config.read_text())
    config = tmp_path / "ssh_config"
    config.write_text("".join(configs))
    yield ("fleet-a", "fleet-b"), config, cores
    for p in procs:
        p.terminate()
        p.wait(timeout=10)


@pytest.mark.scale_out
def test_a_fleet_is_benched_at_once_and_the_slowed_host_is_named(tiny_run, tmp_path, two_hosts, cli):
    """One burner window serves the bench, the deploy decision and the gate: each host's stored baseline is
    measured first, unloaded; then host b's core is loaded and everything runs on both hosts at once."""
    hosts, config, cores = two_hosts
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    model = run / "exports" / "model.int8.onnx"
    # A 30% threshold: the burner doubles host b's times, and the test suite's other worker must not fail host a.
    gate = ["gate", "--candidate", str(model), "--blocks", "8", "--eval-images", "0", "--threshold", "0.3",
            "--ssh-config", str(config),
            "--remote-python", sys.executable, "--host", hosts[0], "--host", hosts[1]]
    r = cli(*gate, "--update-baseline", str(tmp_path / "baselines"))
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "baselines").iterdir()} == {"fleet-a.json", "fleet-b.json"}
    cpu = load_target(find("targets", "cpu"))
    fleet = cpu.model_copy(update={"name": "shelf", "hosts": list(hosts), "runtimes": ["onnxruntime"],
                                   "formats": ["onnx"], "hardware": cpu.hardware.model_copy(
                                       update={"arch": normalized_arch(platform.machine())})})
    burner = subprocess.Popen([sys.executable, "-c", BURNER.format(s=BURN_S)],
                              preexec_fn=lambda: pin_and_lift(cores[1]))
    try:
        d = decide(run, [fleet], 0.05, progress=False, ssh_config=config, remote_python=sys.executable).targets["shelf"]
        judged = cli(*gate, "--stored", str(tmp_path / "baselines"), "--out", str(tmp_path / "gate.json"))
    finally:
        burner.kill()
        burner.wait()
    out = run / "bench" / "deploy" / "shelf"
    summary = json.loads((out / "fleet.json").read_text())
    assert summary["hosts"] == list(hosts) and summary["outlier_hosts"] == ["fleet-b"], summary
    for host in hosts:  # each host has its own full report
        assert json.loads((out / "hosts" / host / "bench.json").read_text())["host"] == host
    for cell in summary["cells"]:
        a, b = cell["p50_ms"]["fleet-a"], cell["p50_ms"]["fleet-b"]
        assert b > 1.25 * a and cell["outliers"] == ["fleet-b"] and min(a, b) <= cell["median_ms"] <= max(a, b)
    # The decision reads the class median and names the outlier.
    assert d.status == "chosen" and d.fleet["hosts"] == list(hosts) and d.fleet["outlier_hosts"] == ["fleet-b"]
    assert set(d.fleet["own_choice"]) == set(hosts)
    records = json.loads((out / "bench.json").read_text())["records"]
    chosen = next(r for r in records if r["artifact"].endswith(d.chosen.file))
    assert chosen["host"] == "fleet" and d.chosen.p50_ms == pytest.approx(
        sum(chosen["fleet"]["p50_ms"].values()) / 2)  # the median of two hosts
    assert "fleet-b" in (out / "fleet.md").read_text()
    # The gate, each host against its own stored baseline: the slowed host fails, alone and by name.
    report = json.loads((tmp_path / "gate.json").read_text())
    assert judged.returncode == 1, judged.stdout + judged.stderr
    assert report["failing_hosts"] == ["fleet-b"] and report["hosts"]["fleet-a"]["verdict"] == "pass", report
    assert report["class"]["hosts_regressed"] == 1 and "failing hosts: fleet-b" in judged.stdout


def test_a_target_names_one_host_or_a_fleet_not_both():
    from pydantic import ValidationError

    cpu = load_target(find("targets", "cpu"))
    with pytest.raises(ValidationError, match="not both"):
        type(cpu).model_validate({**cpu.model_dump(), "host": "a", "hosts": ["b", "c"]})
    with pytest.raises(ValidationError, match="must not repeat"):
        type(cpu).model_validate({**cpu.model_dump(), "hosts": ["b", "b"]})
    with pytest.raises(ValidationError, match="host must look like"):
        type(cpu).model_validate({**cpu.model_dump(), "hosts": ["b", "-oProxyCommand=x"]})
    assert type(cpu).model_validate({**cpu.model_dump(), "hosts": ["b", "c"]}).fleet == ["b", "c"]
