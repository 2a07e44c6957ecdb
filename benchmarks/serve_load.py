"""Load on `edgekit serve`, loopback only and bounded: throughput and p50/p99 at several concurrencies, with and
without micro-batching, RSS growth over many requests, and a bad-input sweep after which the server must still
answer. Server and load generator share this machine (say so when quoting the figures).

    python benchmarks/serve_load.py --run runs/distill_int8 --target cpu [--requests 2000] [--rss-requests 20000]
    python benchmarks/serve_load.py --artifact FILE.onnx   # a file with its sidecar instead of the run's choice

The reference is the runtime's own single-process batch-1 throughput on the same input, measured in this process
before and after the HTTP runs (the median of the two is quoted).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from test_serve import MAX_BODY_MB, MAX_PIXELS, bad_inputs, face_image, png  # noqa: E402 - the tests' own cases

BOX = "30,30,170,170"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS"))


def served(args) -> list[str]:
    """The `edgekit serve` arguments that pick the model: the run's choice for the target, or --artifact."""
    return ["--artifact", str(args.artifact)] if args.artifact else [str(args.run), "--target", args.target]


def start(model: list[str], extra: list[str]) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "edgekit.cli", "serve", *model, "--port", str(port), "--warmup-s",
                             "1", "--max-pixels", str(MAX_PIXELS), "--max-body-mb", str(MAX_BODY_MB), *extra],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    ready = 0
    for _ in range(600):  # bounded: 600 polls, at most 0.1 s apart while not ready
        try:
            ok = httpx.get(f"{base}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            ok = False
        # With --workers N each process loads its own model and /readyz answers for whichever process took the
        # connection: wait for 20 ready answers in a row.
        ready = ready + 1 if ok else 0
        if ready >= 20:
            return proc, base
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode()[-2000:]}")
        if not ok:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("server not ready within 60 s")


async def one_connection(host: str, port: int, request: bytes, take, latencies: list, statuses: list) -> None:
    """A keep-alive HTTP/1.1 connection that sends the same prebuilt request while `take()` allows. Written by hand
    (like wrk) rather than with httpx: server and client share two cores, and httpx's per-request Python cost
    (about as much as the server's) would be measured as the server's."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while take():
            t = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t)
            statuses.append(int(head.split(b" ", 2)[1]))
    finally:
        writer.close()


async def load(base: str, body: bytes, concurrency: int, requests: int, max_s: float) -> dict:
    """`requests` POSTs over `concurrency` connections (bounded by `max_s` too)."""
    host, port = base.removeprefix("http://").split(":")
    request = (f"POST /v1/landmarks?box={BOX} HTTP/1.1\r\nHost: {host}\r\nContent-Type: image/png\r\n"
               f"Content-Length: {len(body)}\r\n\r\n").encode() + body
    latencies, statuses, left = [], [], [requests]
    deadline = time.perf_counter() + max_s

    def take() -> bool:
        if left[0] <= 0 or time.perf_counter() >= deadline:
            return False
        left[0] -= 1
        return True

    start_t = time.perf_counter()
    await asyncio.gather(*(one_connection(host, int(port), request, take, latencies, statuses)
                           for _ in range(concurrency)))
    wall = time.perf_counter() - start_t
    ms = np.array(latencies) * 1000
    return {"concurrency": concurrency, "requests": len(ms), "errors": sum(s != 200 for s in statuses),
            "throughput": len(ms) / wall, "p50_ms": float(np.percentile(ms, 50)),
            "p99_ms": float(np.percentile(ms, 99))}


def runtime_throughput(args, seconds: float = 5.0) -> float:
    """Images/s of the served artifact's own session, batch 1, on the same crop (no HTTP, no decoding)."""
    from edgekit.predict import face_input
    from edgekit.serve.model import ServedModel

    model = ServedModel.from_artifact(args.artifact) if args.artifact else ServedModel.from_run(args.run, args.target)
    model.load(warmup_s=0.5)
    x = face_input(face_image(), tuple(float(v) for v in BOX.split(",")), model.preprocess)
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        model.run(x)
        n += 1
    return n / (time.perf_counter() - t0)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run", type=Path, default=Path("runs/distill_int8"))
    ap.add_argument("--target", default="cpu")
    ap.add_argument("--artifact", type=Path, default=None, help="serve this file (with its sidecar) instead")
    ap.add_argument("--requests", type=int, default=2000, help="per concurrency level")
    ap.add_argument("--concurrency", default="1,8,32")
    ap.add_argument("--batch-window-ms", type=float, default=2.0, help="the batching arm's window")
    ap.add_argument("--rss-requests", type=int, default=20000)
    ap.add_argument("--max-s", type=float, default=120.0, help="time cap per load run")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    from edgekit.fingerprint import fingerprint

    body = png(face_image())
    native = [runtime_throughput(args)]
    arms = {}
    for name, extra in (("no batching", []), ("batching", ["--batch-window-ms", str(args.batch_window_ms)]),
                        ("2 workers", ["--workers", "2"])):
        proc, base = start(served(args), extra)
        try:
            single = asyncio.run(load(base, body, 1, 200, args.max_s))
            rows = [asyncio.run(load(base, body, int(c), args.requests, args.max_s))
                    for c in args.concurrency.split(",")]
            arms[name] = {"single_p50_ms": single["p50_ms"], "rows": rows}
            if name == "no batching":
                asyncio.run(load(base, body, 8, 500, args.max_s))  # settle allocators before the RSS baseline
                before = rss_bytes(proc.pid)
                soak = asyncio.run(load(base, body, 8, args.rss_requests, 10 * args.max_s))
                after = rss_bytes(proc.pid)
                arms[name]["rss"] = {"requests": soak["requests"], "errors": soak["errors"], "before": before,
                                     "after": after, "growth": after / before - 1}
                cases = bad_inputs(face_image())
                statuses = [httpx.post(f"{base}/v1/landmarks", timeout=60, **kw).status_code for _, kw, _ in cases]
                arms[name]["bad_inputs"] = {"cases": len(cases), "as_expected": sum(
                    s == want for s, (_, _, want) in zip(statuses, cases, strict=True)),
                    "still_answers": httpx.get(f"{base}/healthz").status_code == 200}
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    native.append(runtime_throughput(args))
    reference = statistics.median(native)
    doc = {"date": time.strftime("%Y-%m-%d"), "served": served(args),
           "runtime_batch1_throughput": reference, "runtime_throughput_samples": native, "arms": arms,
           "fingerprint": fingerprint(), "command": " ".join(sys.argv)}
    for name, arm in arms.items():
        print(f"{name}: single-request p50 {arm['single_p50_ms']:.2f} ms")
        for r in arm["rows"]:
            print(f"  c={r['concurrency']:>2}: {r['throughput']:7.1f} req/s ({r['throughput'] / reference:.2f}x the "
                  f"runtime's {reference:.1f}/s), p50 {r['p50_ms']:.2f} ms, p99 {r['p99_ms']:.2f} ms "
                  f"({r['p99_ms'] / arm['single_p50_ms']:.1f}x single p50), errors {r['errors']}")
        if "rss" in arm:
            rss = arm["rss"]
            print(f"  RSS {rss['before'] / 2**20:.1f} -> {rss['after'] / 2**20:.1f} MiB over {rss['requests']} "
                  f"requests ({100 * rss['growth']:+.1f}%), errors {rss['errors']}")
            b = arm["bad_inputs"]
            print(f"  bad inputs: {b['as_expected']}/{b['cases']} answered as expected; still answers: "
                  f"{b['still_answers']}")
    if args.out:
        args.out.write_text(json.dumps(doc, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.environ.setdefault("COLUMNS", "120")
    sys.exit(main())
