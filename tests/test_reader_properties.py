"""Property-based tests (hypothesis) for every reader of user files: truncation, wrong counts, non-finite values
and wrong types give an EdgekitError (one line, exit 2 at the CLI), never another exception, and write nothing."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conftest import ROOT
from edgekit.errors import EdgekitError

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
ODD_VALUES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), st.floats(allow_nan=True),
                       st.text(max_size=12), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=5), st.integers(), max_size=2))


def _valid_pts() -> str:
    t = np.linspace(0, 2 * np.pi, 68, endpoint=False)
    pts = np.stack([100 + 40 * np.cos(t), 120 + 40 * np.sin(t)], 1)
    return "version: 1\nn_points: 68\n{\n" + "".join(f"{x:.3f} {y:.3f}\n" for x, y in pts) + "}\n"


def _valid_csv() -> str:
    coords = ",".join(f"{10 + i % 50}.5" for i in range(136))
    return "path," + ",".join(f"c{i}" for i in range(136)) + "\n" + f"face.png,{coords},1,0,1\n"


def _reads_cleanly(folder: Path, read) -> None:
    """`read` either succeeds or raises EdgekitError with a one-line message; no file appears in `folder`."""
    before = sorted(folder.iterdir())
    try:
        read()
    except EdgekitError as exc:
        assert "\n" not in str(exc) and str(exc)
    assert sorted(folder.iterdir()) == before


def _mutate_text(text: str, data) -> str:
    kind = data.draw(st.sampled_from(["truncate", "replace_line", "non_finite", "non_finite_field", "count"]))
    lines = text.splitlines(keepends=True)
    if kind == "truncate":
        return text[:data.draw(st.integers(0, len(text)))]
    i = data.draw(st.integers(0, len(lines) - 1))
    if kind == "replace_line":
        lines[i] = data.draw(st.text(max_size=30)) + "\n"
    elif kind == "non_finite":
        lines[i] = lines[i].replace(lines[i].split(",")[-1].split()[0] if lines[i].strip() else "x",
                                    data.draw(st.sampled_from(["nan", "inf", "-inf", "1e999"])), 1)
    elif kind == "non_finite_field":  # any comma field, so a CSV's coordinates are hit, not only its states
        fields = lines[i].rstrip("\n").split(",")
        j = data.draw(st.integers(0, len(fields) - 1))
        fields[j] = data.draw(st.sampled_from(["nan", "inf", "-inf", "1e999", "NaN"]))
        lines[i] = ",".join(fields) + "\n"
    else:
        del lines[i]
    return "".join(lines)


@SETTINGS
@given(data=st.data())
def test_pts_reader(tmp_path_factory, data):
    from edgekit.data.label_files import read_pts

    folder = tmp_path_factory.mktemp("pts")
    path = folder / "face.pts"
    path.write_text(_mutate_text(_valid_pts(), data))

    def read():
        pts = read_pts(path)
        assert pts.shape == (68, 2) and np.isfinite(pts).all()

    _reads_cleanly(folder, read)


@SETTINGS
@given(data=st.data())
def test_csv_reader(tmp_path_factory, data):
    import cv2

    from edgekit.data.label_files import read_landmark_csv

    folder = tmp_path_factory.mktemp("csv")
    cv2.imwrite(str(folder / "face.png"), np.zeros((80, 80, 3), np.uint8))
    path = folder / "faces.csv"
    path.write_text(_mutate_text(_valid_csv(), data))

    def read():
        for row in read_landmark_csv(path):
            assert np.isfinite(row.landmarks).all()

    _reads_cleanly(folder, read)


def _mutate_tree(doc, data):
    """Set one key anywhere in a YAML/JSON tree to an odd value, or delete it."""
    paths = []

    def walk(node, prefix):
        if isinstance(node, dict):
            for k, v in node.items():
                paths.append((*prefix, k))
                walk(v, (*prefix, k))
        elif isinstance(node, list):
            for i, v in enumerate(node):
                paths.append((*prefix, i))
                walk(v, (*prefix, i))

    walk(doc, ())
    where = data.draw(st.sampled_from(paths))
    parent = doc
    for k in where[:-1]:
        parent = parent[k]
    if isinstance(parent, dict) and data.draw(st.booleans()):
        del parent[where[-1]]
    else:
        parent[where[-1]] = data.draw(ODD_VALUES)
    return doc


@pytest.mark.parametrize("kind, name", [("recipes", "distill_int8"), ("recipes", "prune_int8"), ("targets", "jetson"),
                                        ("targets", "cpu")])
@SETTINGS
@given(data=st.data())
def test_recipe_and_target_readers(tmp_path_factory, kind, name, data):
    from edgekit.config.recipe import load_recipe
    from edgekit.config.target import load_target

    text = (ROOT / kind / f"{name}.yaml").read_text()
    if data.draw(st.booleans()):
        text = text[:data.draw(st.integers(0, len(text)))]
    else:
        text = yaml.safe_dump(_mutate_tree(yaml.safe_load(text), data), allow_unicode=True)
    folder = tmp_path_factory.mktemp(kind)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    _reads_cleanly(folder, lambda: (load_recipe if kind == "recipes" else load_target)(path))


@SETTINGS
@given(data=st.data())
def test_stored_gate_baseline_reader(tmp_path_factory, data):
    from edgekit.bench.gate_stored import BASELINE_SCHEMA, load_baseline

    doc = {"schema": BASELINE_SCHEMA, "target": "cpu", "artifact": "m.onnx", "sha256": "0", "runtime": None,
           "fingerprint": {"cpu_model": "x", "threads": 1}, "block_p50_ms": [0.3, 0.31, 0.29, 0.3, 0.3],
           "nme": 0.05, "budgets": {"threshold": 0.1}}
    text = json.dumps(doc, indent=1)
    if data.draw(st.booleans()):
        text = text[:data.draw(st.integers(0, len(text)))]
    else:
        text = json.dumps(_mutate_tree(doc, data))  # NaN and Infinity are written as JSON extensions
    folder = tmp_path_factory.mktemp("baseline")
    path = folder / "cpu.json"
    path.write_text(text)

    def read():
        got = load_baseline(path)
        assert all(math.isfinite(b) and b > 0 for b in got["block_p50_ms"])

    _reads_cleanly(folder, read)


@pytest.fixture(scope="module")
def small_checkpoint(tmp_path_factory):
    from edgekit.models.checkpoint import CheckpointMeta, save_checkpoint
    from edgekit.models.registry import build

    path = tmp_path_factory.mktemp("ckpt") / "m.safetensors"
    save_checkpoint(path, build("mobile", width=0.25), CheckpointMeta(arch="mobile", arch_kwargs={"width": 0.25}))
    return path.read_bytes()


@SETTINGS
@given(data=st.data())
def test_checkpoint_reader(tmp_path_factory, small_checkpoint, data):
    from edgekit.models.checkpoint import load_checkpoint

    blob = small_checkpoint
    kind = data.draw(st.sampled_from(["truncate", "flip", "meta"]))
    if kind == "truncate":
        blob = blob[:data.draw(st.integers(0, len(blob) - 1))]
    elif kind == "flip":
        i = data.draw(st.integers(8, min(len(blob) - 1, 4000)))  # inside the JSON header
        blob = blob[:i] + bytes([blob[i] ^ 0x55]) + blob[i + 1:]
    else:
        n = int.from_bytes(blob[:8], "little")
        header = json.loads(blob[8:8 + n])
        meta = json.loads(header["__metadata__"]["edgekit"])
        header["__metadata__"]["edgekit"] = json.dumps(_mutate_tree(meta, data))
        raw = json.dumps(header).encode()
        raw += b" " * (-len(raw) % 8)
        blob = len(raw).to_bytes(8, "little") + raw + blob[8 + n:]
    folder = tmp_path_factory.mktemp("ckpt")
    path = folder / "m.safetensors"
    path.write_bytes(blob)

    def read():
        model, _ = load_checkpoint(path)
        assert isinstance(model, torch.nn.Module)

    _reads_cleanly(folder, read)


@SETTINGS
@given(data=st.data())
def test_artifact_sidecar_reader(tmp_path_factory, data):
    from edgekit.bench.sweep import from_files
    from edgekit.config.catalog import find
    from edgekit.config.target import load_target

    doc = {"schema": "edgekit-artifact/1", "format": "onnx", "precision": "int8", "status": "ok",
           "file": "model.int8.onnx", "targets": ["cpu"],
           "preprocess": {"input_size": 112, "mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}}
    text = json.dumps(doc)
    if data.draw(st.booleans()):
        text = text[:data.draw(st.integers(0, len(text)))]
    else:
        text = json.dumps(_mutate_tree(doc, data))
    folder = tmp_path_factory.mktemp("sidecar")
    art = folder / "model.int8.onnx"
    art.write_bytes(b"not read here")
    (folder / "model.int8.onnx.json").write_text(text)
    target = load_target(find("targets", "cpu"))
    _reads_cleanly(folder, lambda: from_files([art], target))
