"""`edgekit serve --ray --replicas 2`: two Ray Serve replicas on a local Ray instance (2 CPUs: this machine; not a
cluster) answer the same requests as single-process `edgekit serve`, with the same JSON."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from conftest import TESTS
from test_serve import bad_inputs, face_image, png, running_server

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")


def requests_to_compare() -> list[dict]:
    """Faces with a box, found by the detector, as multipart, and bad inputs: every kind of answer."""
    from PIL import Image
    from skimage import data

    photo = np.asarray(Image.fromarray(data.astronaut()).resize((256, 256)))  # a real face for the detector
    image = face_image()
    shifted = np.roll(image, (12, -9), axis=(0, 1))
    raw = {"headers": {"content-type": "image/png"}}
    good = [{"content": png(image), "params": {"box": "30,30,170,170"}, **raw},
            {"content": png(shifted), "params": {"box": "20,40,180,190"}, **raw},
            {"content": png(photo), **raw},
            {"files": {"image": ("face.png", png(shifted), "image/png")}, "data": {"box": "25,35,175,185"}}]
    bad = [kwargs for case, kwargs, _ in bad_inputs(image) if case in ("not an image", "box out of bounds",
                                                                       "wrong content type", "no face and no box")]
    return good + bad


def answers(base: str, requests: list[dict], repeat: int) -> tuple[list[tuple[int, dict]], set[str]]:
    """(status, JSON without the timings) for each request, asked `repeat` times from 4 threads (so that both
    replicas answer), checked equal across the repeats; and the replicas that answered."""
    def ask(i):
        r = httpx.post(f"{base}/v1/landmarks", timeout=60, **requests[i % len(requests)])
        body = r.json()
        body.pop("timings_ms", None)
        return r.status_code, body, r.headers.get("x-edgekit-replica")

    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(ask, range(len(requests) * repeat)))
    first = [(status, body) for status, body, _ in got[:len(requests)]]
    for i, (status, body, _) in enumerate(got):
        assert (status, body) == first[i % len(requests)], f"request {i % len(requests)} answered differently"
    return first, {replica for *_, replica in got}


@pytest.mark.scale_out
def test_two_ray_serve_replicas_answer_exactly_as_one_process(tiny_run):
    pytest.importorskip("ray.serve", reason="Ray Serve is the ray extra: pip install 'edgekit[ray]'")
    env = {**os.environ, "PYTHONPATH": str(TESTS), "RAY_USAGE_STATS_ENABLED": "0"}
    args = [str(tiny_run), "--target", "cpu", "--warmup-s", "0.2"]
    requests = requests_to_compare()
    with running_server(args, env) as (base, _, _):
        single, one = answers(base, requests, repeat=1)
        single_card = httpx.get(f"{base}/v1/model").json()
    assert one == {None}  # one process names no replica
    with running_server([*args, "--ray", "--replicas", "2", "--replica-cpus", "0.5"], env, wait_s=180) as (
            base, proc, _):
        on_ray, replicas = answers(base, requests, repeat=6)
        assert httpx.get(f"{base}/v1/model").json() == single_card
        assert httpx.get(f"{base}/healthz").json() == {"status": "ok"}
        assert "edgekit_requests_total" in httpx.get(f"{base}/metrics").text
    assert on_ray == single  # the same statuses and the same JSON, landmarks to the last bit
    assert [status for status, _ in single] == [200] * 4 + [400, 422, 415, 422]
    assert single[2][1]["detected"]  # the photo's face was found, not given
    assert len(replicas) == 2 and None not in replicas, replicas  # both replicas answered
    assert proc.returncode == 0, proc.stderr.read()[-2000:]  # SIGTERM shut Ray down cleanly


def test_serve_ray_options_are_checked_before_anything_starts(tiny_run, cli):
    r = cli("serve", str(tiny_run), "--replicas", "2")
    assert r.returncode == 2 and "add --ray" in r.stderr
    r = cli("serve", str(tiny_run), "--ray", "--workers", "2")
    assert r.returncode == 2 and "--replicas N" in r.stderr
    r = cli("serve", str(tiny_run), "--ray", "--target", "nope")
    assert r.returncode == 2 and "no decision for target 'nope'" in r.stderr


def test_ray_address_spellings():
    from edgekit.serve_cli import expand_ray_address

    assert expand_ray_address(["serve", "r", "--ray:head:6379"]) == ["serve", "r", "--ray-address", "head:6379"]
    assert expand_ray_address(["--ray=ray://h:10001", "--ray"]) == ["--ray-address", "ray://h:10001", "--ray"]
