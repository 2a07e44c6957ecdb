"""A new artifact format and a new runtime are one file each: export, bench, the deploy decision and the remote
runner's bundle find them in their registries. The two files below go into a copy of the package (not shipped);
nothing else is edited."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import pytest

from conftest import ROOT, TESTS, TINY_DATA
from edgekit.config.target import Target, load_target
from edgekit.export.artifacts import plan
from edgekit.formats import exported_format_names, format_named, formats
from edgekit.runtime.registry import runtimes

PACKAGE = ROOT / "toolkit" / "edgekit"

# ONNX Runtime's own ORT format (the one its mobile builds read), as a contributor would add it.
NEW_FORMAT = '''
"""ORT format: ONNX Runtime's flatbuffer model, saved by ONNX Runtime itself from the ONNX model."""
from __future__ import annotations

import os

from ...formats import Format, register_format


class OrtFormat(Format):
    name = "ortformat"
    suffixes = (".ort",)
    precisions = ("fp32", "int8")
    description = "ONNX Runtime ORT format"
    packages = ("onnxruntime",)
    int8_from_qdq = True

    def variant(self, target, precision):
        return target.int8_scheme if precision == "int8" else None

    def build(self, planned, src, out_dir, targets, progress=False):
        import onnxruntime as ort

        source = src.int8_source(planned.variant)[1] if planned.precision == "int8" else src.fp32_onnx
        path, partial = out_dir / planned.filename, out_dir / ("partial-" + planned.filename)
        opts = ort.SessionOptions()
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
        opts.optimized_model_filepath = str(partial)
        opts.add_session_config_entry("session.save_model_format", "ORT")
        ort.InferenceSession(str(source), opts, providers=["CPUExecutionProvider"])
        os.replace(partial, path)
        return path, {"saved_by": "onnxruntime " + ort.__version__}


register_format(OrtFormat())
'''

NEW_RUNTIME = '''
"""ONNX Runtime reading ORT-format files (CPU execution provider)."""
from __future__ import annotations

from .registry import Runtime, register


def session(path, runtime, threads, xnnpack):
    from .ort import OrtSession

    return OrtSession(path, threads=threads)


register(Runtime("ort-mobile", "ort-mobile", "ortformat", (".ort",), False, ("onnxruntime",), ("onnxruntime",),
                 session, "ONNX Runtime on ORT-format files"))
'''

TARGET = """name: edgebox
hardware: {kind: edgebox, arch: any, accelerator: none}
runtimes: [ort-mobile]
formats: [ortformat]
precision: [int8, fp32]
threads: 1
"""


def test_shipped_formats_and_runtimes_come_from_their_files():
    assert set(formats()) == {"onnx", "tflite", "tensorrt", "pytorch"}
    assert exported_format_names() == ("onnx", "tensorrt", "tflite")
    for name, fmt in formats().items():
        assert fmt.name == name and type(fmt).__module__ == f"edgekit.export.exporters.{name}"
    for name, row in runtimes().items():
        assert row.name == name and row.format in formats(), row
        assert set(row.opens) <= set(format_named(row.format).suffixes), row  # a runtime opens its format's files
        assert (PACKAGE / row.module_file).exists()
    with pytest.raises(ValueError, match="unknown format 'ortformat'; expected one of onnx, tensorrt, tflite"):
        Target(name="x", hardware={"kind": "x"}, runtimes=["onnxruntime"], formats=["ortformat"], precision=["fp32"])
    # The TFLite-FP16-is-not-for-GPUs rule lives in the TFLite file, asked through the target.
    gpu = load_target(ROOT / "targets" / "gpu.yaml").model_copy(update={"formats": ["tflite"]})
    assert {p.filename for p in plan([gpu])} == {"model.fp32.tflite", "model.int8.tflite"}


def test_no_format_or_runtime_name_is_compared_outside_its_file():
    """Dispatch goes through the registries: no `fmt == "tflite"` or `"tensorrt" in t.formats` elsewhere."""
    import re

    names = "|".join([*formats(), *{r.family for r in runtimes().values()}])
    compare = re.compile(rf"""(==|!=|\bin)\s*\(?["']({names})["']|["']({names})["']\s*(==|!=|\bin\b)""")
    allowed = {"export/exporters", "runtime/"}
    offenders = [f"{p.relative_to(PACKAGE)}:{i}: {line.strip()}" for p in PACKAGE.rglob("*.py")
                 if not any(a in str(p.relative_to(PACKAGE)) for a in allowed)
                 for i, line in enumerate(p.read_text().splitlines(), 1) if compare.search(line)
                 and "spec.source" not in line]  # how your own model comes (an ONNX file), not an artifact format
    assert not offenders, offenders


@pytest.fixture(scope="module")
def package_with_plugins(tmp_path_factory):
    """A copy of the edgekit package with the new format and runtime dropped in (the zoo's weights linked)."""
    root = tmp_path_factory.mktemp("plugged")
    shutil.copytree(PACKAGE, root / "edgekit", ignore=shutil.ignore_patterns("zoo", "__pycache__"))
    (root / "edgekit" / "zoo").symlink_to(PACKAGE / "zoo")
    (root / "edgekit" / "export" / "exporters" / "ortformat.py").write_text(NEW_FORMAT)
    (root / "edgekit" / "runtime" / "ort_mobile.py").write_text(NEW_RUNTIME)
    return root


def test_a_new_format_and_runtime_are_one_file_each(package_with_plugins, tiny_teacher, tmp_path):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package_with_plugins), str(TESTS)]), "COLUMNS": "200"}

    def edgekit(*args: str) -> subprocess.CompletedProcess:
        r = subprocess.run([sys.executable, "-m", "edgekit.cli", *args], capture_output=True, text=True, env=env,
                           timeout=600, cwd=tmp_path)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        return r

    (tmp_path / "edgebox.yaml").write_text(TARGET)
    data = ", ".join(f'{k}: "{v}"' for k, v in TINY_DATA.items())
    (tmp_path / "r.yaml").write_text(f"name: plug\nteacher: {tiny_teacher}\ndata: {{{data}}}\nstages:\n"
                                     "  - quantize: {calibration: {images: 40}}\n")
    run = tmp_path / "run"
    edgekit("compress", "--recipe", "r.yaml", "--target", "edgebox.yaml", "--run-dir", str(run), "--quiet",
            "--workers", "0")
    # Export built both files through the new format, checked each against PyTorch through the new runtime.
    sides = {s["file"]: s for s in json.loads((run / "manifest.json").read_text())["artifacts"]}
    assert set(sides) == {"model.fp32.ort", "model.int8.ort"}, sides
    assert all(s["status"] == "ok" and s["parity"]["passed"] and s["format"] == "ortformat" for s in sides.values())
    assert sides["model.int8.ort"]["saved_by"].startswith("onnxruntime")
    # The deploy decision measured both on the new runtime and chose one.
    d = json.loads((run / "deploy.json").read_text())["targets"]["edgebox"]
    assert d["status"] == "chosen" and d["chosen"]["file"].endswith(".ort"), d
    assert {c["runtime"] for c in d["candidates"]} == {"ort-mobile"} and len(d["candidates"]) == 2
    # `edgekit bench` measures them too, and reads their precision from the file's name (the format reads none).
    edgekit("bench", "--run", str(run), "--target", "edgebox.yaml", "--quick", "--out", str(tmp_path / "bench"),
            "--no-reference")
    records = json.loads((tmp_path / "bench" / "bench.json").read_text())["records"]
    assert {(r["format"], r["precision"], r["runtime"], r["status"]) for r in records} == {
        ("ortformat", "fp32", "ort-mobile", "ok"), ("ortformat", "int8", "ort-mobile", "ok")}
    assert all(r["latency"]["p50"] > 0 and r["accuracy"]["nme"] < 1 for r in records)
    # The remote runner's bundle carries the new runtime's file, and the bundle alone runs it.
    code = textwrap.dedent(f"""
        from pathlib import Path
        from edgekit.bench.remote import runner_bundle
        runner_bundle(Path({str(tmp_path / 'bundle')!r}))
    """)
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    bundled = tmp_path / "bundle" / "edgekit"
    assert (bundled / "runtime" / "ort_mobile.py").exists() and not (bundled / "export").exists()
    r = subprocess.run([sys.executable, "-m", "edgekit.bench.runner", "--artifact", str(run / "exports" /
                        "model.int8.ort"), "--runtime", "ort-mobile", "--protocol", '{"runs": 5, "min_s": 0}',
                        "--fingerprint"], capture_output=True, text=True, timeout=120, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(tmp_path / "bundle")})
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads(next(line for line in r.stdout.splitlines() if line.startswith("EDGEKIT-RESULT "))[15:])
    assert len(result["latency_ms"]) >= 5 and min(result["latency_ms"]) > 0, result
    assert result["fingerprint"]["runtimes"]["ort-mobile"] is True  # the fingerprint reads the same registry


def test_the_plugins_are_not_shipped():
    assert not (PACKAGE / "export" / "exporters" / "ortformat.py").exists()
    assert "ortformat" not in formats() and "ort-mobile" not in runtimes()
