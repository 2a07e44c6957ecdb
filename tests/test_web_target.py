"""The browser as a measured target: `web`'s deploy decision and bench run onnxruntime-web in real Chromium, timed
inside the page beside ONNX Runtime CPU on the same file, with parity on the evaluation images."""

import json
import shutil

import pytest

from edgekit.bench.deploy import candidates_from, decide
from edgekit.config.catalog import find
from edgekit.config.target import load_target
from edgekit.metrics import FP32_PARITY_TOLERANCE
from test_serve import browser_skip_reason


def test_the_web_decision_is_measured_in_chromium_beside_native_onnx_runtime(tiny_run, tmp_path):
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    web = load_target(find("targets", "web"))
    d = decide(run, [web], 0.05, progress=False).targets["web"]
    assert d.status == "chosen", d
    assert d.chosen.runtime == "onnxruntime-web" and d.chosen.file in ("exports/model.fp32.onnx",
                                                                       "exports/model.int8.onnx")
    bench = json.loads((run / "bench" / "deploy" / "web" / "bench.json").read_text())
    records = {r["precision"]: r for r in bench["records"]}
    assert set(records) == {"fp32", "int8"}
    for r in records.values():
        assert r["status"] == "ok" and r["runtime"] == "onnxruntime-web", r.get("error")
        ref = r["reference"]
        assert ref["runtime"] == "onnxruntime" and ref["trials"] == 3 and ref["p50_ms"] > 0 and ref["p50_ratio"] > 0
        assert ref["parity"]["passed"] and ref["parity"]["images"] == r["accuracy"]["n"]
        assert r["model_rss_bytes"] is None  # the page's memory is Chromium's, not the runner's
        info = r["runtime_info"]
        assert info["onnxruntime-web"] == "1.30.0" and info["cross_origin_isolated"] and "Chromium" in info["browser"]
    assert records["fp32"]["reference"]["parity"]["max_abs_diff_scaled"] <= FP32_PARITY_TOLERANCE
    assert "| ratio |" in (run / "bench" / "deploy" / "web" / "table.md").read_text()


def test_a_runtime_that_disagrees_with_its_reference_is_never_chosen(tmp_path):
    record = {"artifact": str(tmp_path / "exports" / "model.int8.onnx"), "format": "onnx", "precision": "int8",
              "runtime": "onnxruntime-web", "status": "ok", "latency": {"p50": 1.0}, "accuracy": {"nme": 0.03},
              "reference": {"runtime": "onnxruntime",
                            "parity": {"passed": False, "rule": "relative NME change <= 0.01"}}}
    (c,) = candidates_from([record], tmp_path)
    assert c.status == "validation-failed" and "differ from onnxruntime" in c.reason
    record["reference"]["parity"]["passed"] = True
    assert candidates_from([record], tmp_path)[0].status == "ok"


def test_the_browser_runtime_files_are_checked_against_their_pins(tmp_path, monkeypatch):
    from edgekit.errors import EdgekitError
    from edgekit.web import assets

    if assets.missing_or_changed():
        pytest.skip(f"onnxruntime-web is not fetched: {assets.FETCH_HINT}")
    shutil.copytree(assets.assets_dir(), tmp_path / assets.assets_dir().name)
    monkeypatch.setenv("EDGEKIT_DATA_DIR", str(tmp_path))
    assert assets.checked_dir() == tmp_path / assets.assets_dir().name
    (tmp_path / assets.assets_dir().name / "ort.wasm.min.js").write_text("alert('not the pinned file')")
    with pytest.raises(EdgekitError, match=r"missing or changed \(ort.wasm.min.js\); run edgekit data fetch"):
        assets.checked_dir()
