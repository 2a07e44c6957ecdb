"""Output without noise, nothing left behind on bad input, and no unsafe side effects (umask, scp paths)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import TINY_DATA


def test_third_party_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path):
    # Native code writes to the file descriptors directly, so this writes through os.write as oneDNN does.
    script = textwrap.dedent(f"""
        import logging, os, sys, warnings
        from pathlib import Path
        from rich.console import Console
        from edgekit.thirdparty_log import third_party_output_to
        out, err = Console(width=100), Console(stderr=True, width=100)
        with third_party_output_to(Path({str(tmp_path / 'run' / 'log.txt')!r}), out, err):
            os.write(2, b"onednn_verbose,info,cpu,runtime:OpenMP\\n")
            os.write(1, b"Failed to load _C_mxfp8.so\\n")
            print("a library's print")
            warnings.warn("pytree is deprecated", DeprecationWarning)
            logging.getLogger("edgekit").warning("calibration set has 40 images")
            out.print("edgekit table row")
            err.print("edgekit progress")
            import rich
            rich.get_console().print("epoch-line")  # rich.progress bars and epoch logs use the global console
        out.print("after")
    """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["edgekit", "table", "row", "epoch-line", "after"]
    assert "edgekit progress" in r.stderr and "calibration set has 40 images" in r.stderr
    for noise in ("onednn", "mxfp8", "library's print", "pytree"):
        assert noise not in r.stdout + r.stderr
    log = (tmp_path / "run" / "log.txt").read_text()
    for noise in ("onednn_verbose", "Failed to load _C_mxfp8.so", "a library's print", "pytree is deprecated"):
        assert noise in log


def test_compress_keeps_the_terminal_to_its_own_output_and_writes_log_txt(tiny_run):
    """tiny_run is `compress --quiet --target cpu,mobile,jetson` (conftest): every exporter and the deploy bench
    ran, and only edgekit's own warnings reached the terminal (this tiny calibration set earns one)."""
    lines = (tiny_run.parent / "compress.stderr").read_text().strip().splitlines()
    assert lines == ["warning calibration uses 40 images (< 100): ranges may be poor"], lines[:10]
    assert "int8" in (tiny_run.parent / "compress.stdout").read_text()
    assert (tiny_run / "log.txt").read_text().startswith("--- ")


def test_a_byom_run_that_fails_on_an_unknown_module_leaves_no_run_directory(tmp_path, cli):
    import cv2

    from edgekit.data import render

    images = tmp_path / "images"
    images.mkdir()
    for i in range(4):
        cv2.imwrite(str(images / f"{i}.png"), render(11, i).image[:, :, ::-1])
    run = tmp_path / "run"
    r = cli("compress", "--recipe", "ptq_int8", "--model", "no_such_pkg.models:net", "--input-shape", "1,3,112,112",
            "--data", str(images), "--run-dir", str(run))
    assert r.returncode == 2 and "no_such_pkg" in r.stderr and "Traceback" not in r.stderr, r.stderr
    assert not run.exists()


def test_atomic_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    from edgekit.atomic import write_bytes

    mask = os.umask(0o027)
    os.umask(mask)
    try:
        os.umask(0o027)

        def forbidden(_):
            raise AssertionError("os.umask called: another thread could create a world-writable file meanwhile")

        monkeypatch.setattr(os, "umask", forbidden)
        write_bytes(tmp_path / "a.bin", b"x")
        assert (tmp_path / "a.bin").stat().st_mode & 0o777 == 0o640
    finally:
        monkeypatch.undo()
        os.umask(mask)


def test_scp_never_takes_a_local_path_with_a_colon_for_a_host(sshd, tmp_path):
    from edgekit.bench.remote import Remote

    alias, config = sshd
    folder = tmp_path / "run:1"
    folder.mkdir()
    src = folder / "model.onnx"
    src.write_bytes(b"payload")
    cwd = os.getcwd()
    os.chdir(tmp_path)  # a relative "run:1/model.onnx" is what scp would read as host "run"
    try:
        remote = Remote(alias, ssh_config=config)
        work = remote.workdir()
        remote.put([Path("run:1/model.onnx")], work)
        got = remote.run(["cat", f"{work}/model.onnx"]).stdout
        remote.cleanup(work)
    finally:
        os.chdir(cwd)
    assert got == "payload"


@pytest.mark.parametrize("rev", ["-oProxyCommand=x", "--output=/tmp/x"])
def test_git_revisions_starting_with_a_dash_are_refused(tmp_path, rev):
    from edgekit.bench.gate import resolve_artifact
    from edgekit.errors import EdgekitError

    with pytest.raises(EdgekitError, match="not an option"):
        resolve_artifact(f"git:{rev}:model.onnx", tmp_path)


def test_the_readme_ci_example_fails_when_the_gate_fails():
    # `edgekit gate ... | tee` without pipefail takes tee's status: the step could never fail.
    import re

    from conftest import ROOT

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", readme, re.S)
    steps = [b for b in blocks if "edgekit gate" in b]
    assert steps
    for block in steps:
        if "| tee" in block:
            assert "set -o pipefail" in block and "shell: bash" in block


def test_an_edited_checkout_does_not_resume_from_what_older_code_built(tiny_teacher, tmp_path, monkeypatch):
    from edgekit import pipeline
    from edgekit.config.recipe import Recipe

    recipe = Recipe(name="q", teacher=str(tiny_teacher), data=TINY_DATA,
                    stages=[{"quantize": {"calibration": {"images": 40}, "fallback": None}}])
    run = pipeline.CompressRun(recipe=recipe, run_dir=tmp_path / "run", targets=[], progress=False, workers=0)
    pipeline.compress(run)
    again = pipeline.compress(run)
    assert all(s.cached for s in again.steps)
    monkeypatch.setattr(pipeline, "code_hash", lambda: "edited-source")
    edited = pipeline.compress(run)
    assert not any(s.cached for s in edited.steps)


def test_architecture_doc_matches_the_code_and_rooms_import_only_downward():
    """docs/ARCHITECTURE.md's generated part (modules, room imports, stages, formats) is current, and no room
    imports one it must not (compress never imports export or bench)."""
    root = Path(__file__).resolve().parents[1]
    r = subprocess.run([sys.executable, str(root / "docs" / "gen_architecture.py"), "--check"], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    sys.path.insert(0, str(root / "docs"))
    import gen_architecture

    assert not gen_architecture.violations()
    assert gen_architecture.import_cycles() == []  # module-level and lazy imports; TYPE_CHECKING ones never run
    assert ("compress", "export") not in gen_architecture.room_edges()
    assert ("pipeline", "export") in gen_architecture.room_edges()  # the check sees real imports
