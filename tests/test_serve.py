"""`edgekit serve`: the real server (uvicorn in a subprocess, loopback, a free port) and real HTTP requests."""

import io
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest

from conftest import TESTS

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

MAX_PIXELS = 100_000  # the test image (200x200) fits; a 400x400 one does not
MAX_BODY_MB = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_server(args: list[str], env: dict | None = None, wait_s: float = 60.0):
    """`edgekit serve ARGS --port <free>` in a subprocess; yields (base URL, process, /readyz statuses seen while
    waiting: the first one as soon as /healthz answers). Stopped with SIGTERM, which it must survive cleanly."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "serve", *args, "--port", str(port)],
                            env=env or {**os.environ, "PYTHONPATH": str(TESTS)}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    base, readiness = f"http://127.0.0.1:{port}", []
    try:
        deadline = time.monotonic() + wait_s  # bounded: the process must answer and be ready in time
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"server exited {proc.returncode}: {proc.stderr.read()[-2000:]}")
            try:
                readiness.append(httpx.get(f"{base}/readyz", timeout=2).status_code)
                if readiness[-1] == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        assert readiness and readiness[-1] == 200, f"not ready after {wait_s:g} s: {readiness[-3:]}"
        yield base, proc, readiness
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def server(tiny_run, tmp_path_factory):
    """`edgekit serve` on the shared run's cpu choice, with a private TMPDIR to show nothing is spooled to disk."""
    tmp = tmp_path_factory.mktemp("serve-tmp")
    env = {**os.environ, "TMPDIR": str(tmp), "PYTHONPATH": str(TESTS)}
    with running_server([str(tiny_run), "--target", "cpu", "--warmup-s", "3", "--max-pixels", str(MAX_PIXELS),
                         "--max-body-mb", str(MAX_BODY_MB)], env) as (base, _, readiness):
        yield base, tmp, readiness


def png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def face_image() -> np.ndarray:
    """A SynthFaces test face in the middle of a 200x200 grey frame."""
    from edgekit.data import render

    frame = np.full((200, 200, 3), 128, np.uint8)
    frame[44:156, 44:156] = render(7, 3).image
    return frame


def test_readyz_says_not_ready_until_the_model_is_loaded_and_warm(server):
    _, _, readiness = server
    assert readiness[0] == 503 and readiness[-1] == 200 and set(readiness) == {503, 200}


def test_landmarks_through_the_api_equal_the_artifacts_own_output(server, tiny_run):
    from edgekit.predict import face_input, read_outputs
    from edgekit.serve.model import ServedModel

    base, _, _ = server
    card = httpx.get(f"{base}/v1/model").json()
    assert card["ready"] and card["decision"] == "chosen" and card["landmarks"] == 68
    image, box = face_image(), (30.0, 30.0, 170.0, 170.0)
    got = httpx.post(f"{base}/v1/landmarks?box=30,30,170,170", content=png(image),
                     headers={"content-type": "image/png"})
    assert got.status_code == 200, got.text
    body = got.json()
    # The same artifact, runtime and preprocessing, run here.
    model = ServedModel.from_artifact(tiny_run / "exports" / card["artifact"], card["runtime"])
    model.load(warmup_s=0)
    want = read_outputs(model.run(face_input(image, box, model.preprocess)), box, detected=False)
    assert np.abs(np.array(body["landmarks"]) - want.landmarks).max() <= 1e-5
    assert body["states"] == want.states and body["model"] == card["id"] and not body["detected"]
    # The same as a multipart upload with the box as a form field.
    form = httpx.post(f"{base}/v1/landmarks", files={"image": ("face.png", png(image), "image/png")},
                      data={"box": "30,30,170,170"})
    assert form.status_code == 200 and form.json()["landmarks"] == body["landmarks"]


def bad_inputs(image: np.ndarray) -> list[tuple[str, dict, int]]:
    """(case, request keyword arguments, expected status)."""
    from PIL import Image

    jpeg = io.BytesIO()
    Image.fromarray(image).save(jpeg, format="JPEG")
    raw = {"headers": {"content-type": "image/png"}}
    noise = np.random.default_rng(0).integers(0, 255, (900, 900, 3), np.uint8)  # ~2.4 MB of PNG
    return [
        ("not an image", {"content": b"hello, world" * 10, **raw}, 400),
        ("truncated JPEG", {"content": jpeg.getvalue()[: len(jpeg.getvalue()) // 2],
                            "headers": {"content-type": "image/jpeg"}}, 400),
        ("1x1 image", {"content": png(np.zeros((1, 1, 3), np.uint8)), **raw}, 422),
        ("over the pixel limit", {"content": png(np.zeros((400, 400, 3), np.uint8)), **raw}, 413),
        ("body over --max-body-mb", {"content": b"\0" * (MAX_BODY_MB * 2**20 + 1), **raw}, 413),
        ("box out of bounds", {"content": png(image), "params": {"box": "0,0,300,150"}, **raw}, 422),
        ("box inverted", {"content": png(image), "params": {"box": "150,150,20,20"}, **raw}, 422),
        ("box not numbers", {"content": png(image), "params": {"box": "a,b,c,d"}, **raw}, 422),
        ("wrong content type", {"content": png(image), "headers": {"content-type": "text/plain"}}, 415),
        ("empty body", {"content": b"", **raw}, 400),
        ("multipart without an image", {"files": {"photo": ("x.png", png(image), "image/png")}}, 422),
        ("large multipart over the pixel limit", {"files": {"image": ("n.png", png(noise), "image/png")}}, 413),
        ("no face and no box", {"content": png(np.full((200, 200, 3), 128, np.uint8)), **raw}, 422),
        ("box of three numbers", {"content": png(image), "params": {"box": "10,10,100"}, **raw}, 422),
        ("PNG cut after its header", {"content": png(image)[:64], **raw}, 400),
    ]


def test_every_bad_input_gets_its_4xx_as_json_and_the_server_carries_on(server):
    base, tmp, _ = server
    for case, kwargs, status in bad_inputs(face_image()):
        r = httpx.post(f"{base}/v1/landmarks", **kwargs, timeout=60)
        assert r.status_code == status, (case, r.status_code, r.text)
        assert r.json()["error"] and r.json()["detail"], case
    for method, path, status in (("GET", "/nope", 404), ("GET", "/v1/landmarks", 405), ("DELETE", "/v1/model", 405)):
        r = httpx.request(method, f"{base}{path}")
        assert r.status_code == status and set(r.json()) == {"error", "detail"}, (path, r.text)
    assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}  # still answering
    # The 2.4 MB multipart upload was never spooled to disk (a runtime library leaves a 51-byte session id there).
    written = [p for p in Path(tmp).rglob("*") if p.is_file() and p.stat().st_size > 1024]
    assert not written, written
    metrics = httpx.get(f"{base}/metrics").text
    for status in ("400", "413", "415", "422"):
        assert f'edgekit_requests_total{{method="POST",route="/v1/landmarks",status="{status}"}}' in metrics, status
    assert 'method="GET",route="unmatched",status="404"' in metrics and "edgekit_request_seconds_bucket" in metrics


def test_the_page_and_the_openapi_schema_are_served(server):
    base, _, _ = server
    page = httpx.get(f"{base}/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "/v1/landmarks" in page.text and "http" not in page.text.replace("http-equiv", "")  # no CDN
    paths = httpx.get(f"{base}/openapi.json").json()["paths"]
    assert {"/v1/landmarks", "/v1/model", "/healthz", "/readyz", "/metrics"} <= set(paths)


def test_serve_refuses_a_proxy_decision_and_says_how(tiny_run, cli):
    import platform

    if platform.machine() not in ("x86_64", "AMD64"):
        pytest.skip("this machine is arm64: here mobile is measured where it runs")
    r = cli("serve", str(tiny_run), "--target", "mobile")
    assert r.returncode == 2 and "the decision is proxy" in r.stderr and "--allow-proxy" in r.stderr
    r = cli("serve", str(tiny_run), "--target", "nope")
    assert r.returncode == 2 and "no decision for target 'nope'" in r.stderr


def browser_skip_reason() -> str | None:
    from edgekit.web import assets
    from edgekit.web.chromium import unavailable_reason

    reason = unavailable_reason()
    if reason is None and assets.missing_or_changed():
        reason = f"onnxruntime-web is not fetched: {assets.FETCH_HINT}"
    return reason


def run_on_page(page, folder: Path, name: str, image: np.ndarray) -> dict:
    """Pick `image` in the page's file input (a new file name each time: the input fires on change) and wait for
    the page's result."""
    path = folder / name
    path.write_bytes(png(image))
    page.evaluate("window.lastResult = null; window.lastError = null; window.keepInput = true")
    page.set_input_files("#photo", str(path))
    page.wait_for_function("window.lastResult || window.lastError")
    error = page.evaluate("window.lastError")
    assert error is None, error
    return page.evaluate("window.lastResult")


def test_the_page_runs_the_model_in_the_browser_and_through_the_api(server, tiny_run, tmp_path):
    """Real Chromium on the served page: in-browser mode (onnxruntime-web) on the run's FP32 and INT8 ONNX files,
    then server mode; what the page drew is read back and checked against ONNX Runtime CPU here."""
    reason = browser_skip_reason()
    if reason:
        pytest.skip(reason)
    from edgekit.metrics import FP32_PARITY_TOLERANCE, nme_per_image
    from edgekit.predict import face_input, read_outputs
    from edgekit.runtime import load
    from edgekit.web.chromium import chromium

    base, _, _ = server
    card = httpx.get(f"{base}/v1/model").json()
    image, box = face_image(), (30.0, 30.0, 170.0, 170.0)
    want_input = face_input(image, box, card["preprocess"])
    with chromium() as browser:
        page = browser.new_page()
        page.set_default_timeout(60_000)
        page.goto(f"{base}/")
        page.wait_for_function("document.getElementById('onnx').options.length > 0")
        page.fill("#box", "30,30,170,170")
        page.check("input[value=browser]")
        for file in ("model.fp32.onnx", "model.int8.onnx"):
            page.select_option("#onnx", file)
            got = run_on_page(page, tmp_path, f"browser-{file}.png", image)
            assert got["mode"] == "browser" and got["file"] == file
            # The page's preprocessing is the sidecar's: its input tensor is Python's to within rounding of a level.
            x = np.asarray(got["input"], np.float32).reshape(want_input.shape)
            assert np.abs(x - want_input).max() <= 2.5 / 255 / 0.5
            # onnxruntime-web's outputs against ONNX Runtime CPU on the page's own input.
            ref = load(tiny_run / "exports" / file, "onnxruntime").run(x)
            outs = [np.asarray(o, np.float32).reshape(r.shape) for o, r in zip(got["outputs"], ref, strict=True)]
            if file == "model.fp32.onnx":  # FP32: the export parity's tolerance, on every output
                for o, r in zip(outs, ref, strict=True):
                    assert np.abs(o - r).max() / max(float(np.abs(r).max()), 1.0) <= FP32_PARITY_TOLERANCE
            else:  # INT8: WASM's integer kernels round otherwise than AVX2's; the landmarks stay within 1% IOD
                assert nme_per_image(outs[0].reshape(1, -1, 2), ref[0].reshape(1, -1, 2))[0] <= 0.01
            # The drawn landmarks are those outputs in image pixels, and a dot is drawn at each.
            want = read_outputs(ref, box, detected=False)
            assert np.abs(np.asarray(got["landmarks"]) - want.landmarks).max() <= 0.01 * (box[2] - box[0])
            x0, y0 = (int(round(v)) for v in got["landmarks"][30])  # the nose tip
            rgba = page.evaluate(f"Array.from(document.getElementById('view').getContext('2d')"
                                 f".getImageData({x0}, {y0}, 1, 1).data)")
            assert rgba[1] > 200 and rgba[0] < 60 and rgba[2] < 60, rgba  # the landmark colour, #00e000
        page.screenshot(path=str(tmp_path / "page.png"))
        if os.environ.get("EDGEKIT_SCREENSHOT"):  # the README's picture: EDGEKIT_SCREENSHOT=docs/img/serve_page.png
            page.screenshot(path=os.environ["EDGEKIT_SCREENSHOT"])

        page.check("input[value=server]")
        got = run_on_page(page, tmp_path, "server.png", image)
        api = httpx.post(f"{base}/v1/landmarks?box=30,30,170,170", content=png(image),
                         headers={"content-type": "image/png"}).json()
        assert got["mode"] == "server" and got["landmarks"] == api["landmarks"]
