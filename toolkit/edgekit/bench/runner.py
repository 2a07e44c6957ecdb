"""The device-side bench runner: one trial of one artifact on one runtime, as JSON on stdout.

    python -m edgekit.bench.runner --artifact model.int8.onnx --runtime onnxruntime --threads 1 \
        --protocol '{"runs": 50, ...}' [--eval eval.npz] [--throughput] [--input-shape 1,3,112,112]

It imports numpy, the standard library, and the one runtime the artifact needs: no torch (unless the runtime is
torch), no typer, no matplotlib, so it runs on a Jetson or a phone-class board with just numpy and its runtime.
The sweep copies it there (see `remote.py`) and starts one process per trial, so trials do not share warm caches,
allocator state or JIT decisions.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import sys
import time
import traceback

import numpy as np

from ..fingerprint import fingerprint
from ..metrics import evaluate, nme_per_image
from ..runtime import default_runtime, load, preload
from ..runtime.timing import timed_runs
from ..slices import ATTRIBUTE_PREFIX
from .protocol import Protocol
from .reference import open_reference, parity, reference_of, side_by_side

EVAL_BATCH = 32


def peak_rss_bytes() -> int:
    # ru_maxrss is KiB on Linux and bytes on macOS.
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(rss if platform.system() == "Darwin" else rss * 1024)


def current_rss_bytes() -> int | None:
    """Resident memory now (Linux /proc); None elsewhere."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def model_input(session, shape_arg: str | None) -> np.ndarray:
    """A fixed random input: `--input-shape` when given, else the model's own input shape with its dynamic
    dimensions (batch, or a named axis) set to 1, so any input size or layout is timed as the model expects."""
    if shape_arg:
        shape = [int(v) for v in shape_arg.split(",")]
    else:
        declared = list(getattr(session, "input_shape", None) or [])
        if not declared:
            raise ValueError("the model declares no input shape; pass --input-shape N,C,H,W")
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in declared]
    return np.random.default_rng(0).standard_normal(shape).astype(np.float32)


def _fixed_batch(session) -> int | None:
    first = session.input_shape[0] if getattr(session, "input_shape", None) else None
    return first if isinstance(first, int) and first > 0 else None


def eval_outputs(session, x: np.ndarray) -> list[np.ndarray]:
    """The session's outputs on the whole evaluation set, in batches it accepts."""
    step = _fixed_batch(session) or EVAL_BATCH
    outs = [session.run(x[i:i + step]) for i in range(0, len(x), step)]
    return [np.concatenate([o[k] for o in outs]) for k in range(len(outs[0]))]


def accuracy(session, data: dict, outputs: list[np.ndarray] | None = None) -> dict:
    """Task metrics, plus each image's NME (`nme_per_image`) so two artifacts can be compared image by image;
    `data["contract"]` (JSON), when present, says how to read your own model's outputs."""
    x, landmarks = data["x"], data["landmarks"]
    outputs = outputs if outputs is not None else eval_outputs(session, x)
    pred, states, scheme = read_eval_outputs(outputs, data)
    logits = None if states is None else outputs[states]
    attributes = {k.removeprefix(ATTRIBUTE_PREFIX): v for k, v in data.items() if k.startswith(ATTRIBUTE_PREFIX)}
    result = evaluate(pred, landmarks, logits, data.get("states"), scheme=scheme, attributes=attributes)
    result["nme_per_image"] = [float(v) for v in nme_per_image(pred, landmarks, scheme)]
    return result


def read_eval_outputs(outputs: list[np.ndarray], data: dict):
    """(landmarks (N, K, 2), the index of the state logits among the outputs or None, scheme or None)."""
    n = len(data["x"])
    if "contract" in data:
        from ..outputs import OutputContract

        c = OutputContract.from_json(json.loads(str(data["contract"])))
        states = c.state_index if c.state_index is not None and "states" in data else None
        return np.asarray(c.decode(outputs)), states, c.scheme
    return outputs[0].reshape(n, -1, 2), 1 if len(outputs) > 1 and "states" in data else None, None


def session_timer(session):
    """(batch, min_runs, min_s) -> seconds per run: the session's own clock where it has one (a browser times
    inside the page, without the round trip to Python), else the wall clock around `session.run`."""
    own = getattr(session, "timed_runs", None)
    if own is not None:
        return own
    return lambda batch, min_runs, min_s: timed_runs(lambda: session.run(batch), min_runs, min_s)


def throughput(session, sample: np.ndarray, protocol: Protocol) -> dict:
    """Images per second at each batch size (a fixed-batch model runs larger batches in chunks)."""
    out = {}
    for b in protocol.batch_sizes:
        batch = np.repeat(sample[:1], b, axis=0)
        session.run(batch)  # shape change: let the runtime re-plan before timing
        times = session_timer(session)(batch, protocol.throughput_runs, protocol.throughput_s)
        out[str(b)] = {"images_per_s": b * len(times) / sum(times), "runs": len(times)}
    return out


def trial(args: argparse.Namespace) -> dict:
    protocol = Protocol.from_dict(json.loads(args.protocol))
    sample = None
    if args.eval:  # one image for the latency runs; the whole set is loaded only after memory is measured
        with np.load(args.eval) as z:
            sample = z["x"][:1].astype(np.float32)

    # The model's own memory: resident growth from creating the session and running batch 1, with the runtime's
    # library already imported, so neither the harness, the runtime's code nor the evaluation data count.
    preload(args.runtime or default_runtime(args.artifact))
    rss_before = current_rss_bytes()
    t = time.perf_counter()
    session = load(args.artifact, args.runtime, threads=args.threads, xnnpack=args.xnnpack)
    init_s = time.perf_counter() - t
    if sample is None:
        sample = model_input(session, args.input_shape)
    t = time.perf_counter()
    session.run(sample)
    first_s = time.perf_counter() - t

    timer = session_timer(session)
    warmup = timer(sample, protocol.warmup_runs, protocol.warmup_s)
    # A session whose memory lives in another process (a browser's page) has no growth of ours to report.
    rss_after = current_rss_bytes() if getattr(session, "memory_in_process", True) else None
    ref = open_reference(session, args.artifact, args.threads, args.xnnpack) if reference_of(session) else None
    if ref is not None:
        ref_timer = session_timer(ref)
        ref_timer(sample, protocol.warmup_runs, protocol.warmup_s)
        samples, ref_samples = side_by_side(timer, ref_timer, sample, protocol.runs, protocol.min_s)
    else:
        samples = timer(sample, protocol.runs, protocol.min_s)
    record = {
        "init_ms": 1000 * init_s,
        "first_inference_ms": 1000 * first_s,
        "warmup_runs": len(warmup),
        "latency_ms": [1000 * s for s in samples],
        "memory": {"model_rss_bytes": None if rss_before is None or rss_after is None
                   else max(0, rss_after - rss_before), "harness_rss_bytes": rss_before},
    }
    data = dict(np.load(args.eval)) if args.eval else None
    if args.throughput:
        record["throughput"] = throughput(session, sample, protocol)
    if getattr(session, "info", None):
        record["runtime_info"] = session.info
    if ref is not None:
        record["reference"] = {"runtime": reference_of(session), "latency_ms": [1000 * s for s in ref_samples]}
    if data is not None:
        outputs = eval_outputs(session, data["x"])
        record["accuracy"] = accuracy(session, data, outputs)
        if ref is not None:
            ref_outputs = eval_outputs(ref, data["x"])
            pred, index, scheme = read_eval_outputs(outputs, data)
            ref_pred = read_eval_outputs(ref_outputs, data)[0]
            record["reference"]["parity"] = parity(outputs, ref_outputs, pred, ref_pred, scheme, index)
            ref_nme = float(nme_per_image(ref_pred, data["landmarks"], scheme).mean())
            record["reference"]["parity"]["nme_change"] = float(np.mean(record["accuracy"]["nme_per_image"])) - ref_nme
            record["reference"]["parity"]["nme_reference"] = ref_nme
    record["peak_rss_bytes"] = peak_rss_bytes()
    record["pid"] = os.getpid()
    if args.fingerprint:
        record["fingerprint"] = fingerprint()
    return record


class ArmFailed(RuntimeError):
    def __init__(self, arm: int, exc: Exception):
        super().__init__(f"{exc.__class__.__name__}: {exc}")
        self.arm = arm


def interleaved_trial(args: argparse.Namespace) -> dict:
    """Several artifacts in one process, timed in alternating chunks in a random order each round.

    The gate's blocks use this: whatever slows the machine for a second or two (a neighbour's job, a frequency
    change) then lands on every arm of the block alike instead of on whichever process ran at that moment, so
    the per-block ratio keeps the slowdown and loses most of the noise.
    """
    protocol = Protocol.from_dict(json.loads(args.protocol))
    paths = [args.artifact, *args.interleave]
    sessions, sample = [], None
    for i, path in enumerate(paths):
        try:
            s = load(path, args.runtime, threads=args.threads, xnnpack=args.xnnpack)
            mine = model_input(s, args.input_shape)
            if sample is not None and mine.shape != sample.shape:
                raise ValueError(f"input shape {list(mine.shape)} differs from the first arm's {list(sample.shape)}"
                                 "; models gated against each other must take the same input")
            sample = mine if sample is None else sample
            s.run(sample)
        except Exception as exc:  # noqa: BLE001 - reported with the arm, so the host knows which side broke
            raise ArmFailed(i, exc) from exc
        sessions.append(s)
    for s in sessions:
        timed_runs(lambda s=s: s.run(sample), protocol.warmup_runs, protocol.warmup_s)
    rng = random.Random(args.seed)
    times: list[list[float]] = [[] for _ in sessions]
    clock, start, chunk = time.perf_counter, time.perf_counter(), 5
    order = list(range(len(sessions)))
    while min(len(t) for t in times) < protocol.runs or clock() - start < protocol.min_s * len(sessions):
        rng.shuffle(order)
        for i in order:
            times[i] += timed_runs(lambda i=i: sessions[i].run(sample), chunk, 0.0)
    return {"arms": [{"artifact": str(p), "latency_ms": [1000 * t for t in ts]} for p, ts in zip(paths, times,
                                                                                                 strict=True)],
            "pid": os.getpid()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m edgekit.bench.runner", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--artifact", required=True)
    ap.add_argument("--runtime", default=None)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--xnnpack", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--protocol", default="{}", help="Protocol fields as JSON")
    ap.add_argument("--eval", default=None, help=".npz with x (N,3,H,W float32), landmarks (N,68,2), states")
    ap.add_argument("--input-shape", default=None,
                    help="N,C,H,W when no --eval is given [default: the model's own input, dynamic dims as 1]")
    ap.add_argument("--throughput", action="store_true", help="also measure images/s per batch size")
    ap.add_argument("--fingerprint", action="store_true", help="also record the machine's fingerprint")
    ap.add_argument("--interleave", action="append", default=[], metavar="ARTIFACT",
                    help="also time this artifact, interleaved with --artifact in one process (repeatable)")
    ap.add_argument("--seed", type=int, default=0, help="seed for the interleaving order")
    args = ap.parse_args(argv)
    try:
        result = {"ok": True, **(interleaved_trial(args) if args.interleave else trial(args))}
    except ArmFailed as exc:
        result = {"ok": False, "error": str(exc), "failed_arm": exc.arm, "traceback": traceback.format_exc(limit=6)}
    except Exception as exc:  # noqa: BLE001 - the host records the error in the cell and goes on
        result = {"ok": False, "error": f"{exc.__class__.__name__}: {exc}",
                  "traceback": traceback.format_exc(limit=6)}
    sys.stdout.write("EDGEKIT-RESULT " + json.dumps(result) + "\n")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
