"""`edgekit serve`, kept apart from cli.py (which registers it). Needs the `serve` extra (FastAPI, uvicorn,
python-multipart, prometheus-client)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer

from .errors import EdgekitError

CONFIG_ENV = "EDGEKIT_SERVE_CONFIG"  # how `--workers N` processes get the same settings


def expand_ray_address(argv: list[str]) -> list[str]:
    """`--ray:ADDRESS` and `--ray=ADDRESS` (the spelling of `--executor ray:ADDRESS`) as `--ray-address ADDRESS`."""
    out = []
    for a in argv:
        if a.startswith(("--ray:", "--ray=")):
            out += ["--ray-address", a[len("--ray:"):]]
        else:
            out.append(a)
    return out


def serve(
    run_dir: Annotated[Path | None, typer.Argument(help="Compress run directory whose deploy.json chose the model.")]
    = None,
    target: Annotated[str, typer.Option(help="Whose choice in deploy.json to serve.")] = "cpu",
    artifact: Annotated[Path | None, typer.Option(help="Serve this exported file instead (its sidecar gives the "
                                                  "preprocessing).")] = None,
    runtime: Annotated[str | None, typer.Option(help="Runtime for --artifact; default: the file type's CPU one.")]
    = None,
    allow_proxy: Annotated[bool, typer.Option(help="Serve a decision that is a proxy (measured on other "
                                              "hardware) or that had nothing in budget.")] = False,
    host: Annotated[str, typer.Option(help="Address to bind; 127.0.0.1 keeps it on this machine.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535)] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="Server processes, each with its own model.")] = 1,
    threads: Annotated[int | None, typer.Option(min=1, help="Runtime threads per process; default: the "
                                                "runtime's own.")] = None,
    max_body_mb: Annotated[float, typer.Option(min=0.01, help="Largest request body; refused before it is "
                                               "read whole.")] = 10.0,
    max_pixels: Annotated[int, typer.Option(min=256, help="Largest image (width x height).")] = 40_000_000,
    batch_window_ms: Annotated[float, typer.Option(min=0, help="Run faces arriving within this window as one "
                                                   "batch; 0 (default) runs each at once.")] = 0.0,
    max_batch: Annotated[int, typer.Option(min=1, max=256, help="Largest micro-batch.")] = 8,
    warmup_s: Annotated[float, typer.Option(min=0, help="Seconds of warm-up runs before /readyz says ready.")]
    = 0.5,
    ray: Annotated[bool, typer.Option("--ray", help="Serve as Ray Serve replicas behind Ray's HTTP proxy: a local "
                                      "Ray instance, or the cluster RAY_ADDRESS or --ray-address names "
                                      "(`--ray:ADDRESS` is short for both). Needs the ray extra.")] = False,
    ray_address: Annotated[str | None, typer.Option(help="Ray cluster to deploy on (implies --ray).")] = None,
    replicas: Annotated[int, typer.Option(min=1, max=256, help="Ray Serve replicas, each with its own model "
                                          "(with --ray).")] = 1,
    replica_cpus: Annotated[float, typer.Option(min=0.01, help="CPUs Ray reserves for each replica; also its "
                                                "runtime threads unless --threads (with --ray).")] = 1.0,
) -> None:
    """Serve the chosen model over HTTP: POST /v1/landmarks, GET /v1/model, /healthz, /readyz, /metrics, /docs.

    The model is the artifact the run's deploy.json chose for --target (a proxy or an over-budget decision is
    refused unless --allow-proxy), run through its own runtime with its sidecar's preprocessing; or --artifact.
    The page at / runs a photo or the webcam on the server, or in the browser with onnxruntime-web on the FP32 or
    INT8 ONNX file beside the served one (`edgekit data fetch onnxruntime-web` first; `make data` does it).
    With --ray the same application runs as --replicas Ray Serve replicas (same API and JSON; /metrics is the
    answering replica's, named in the X-Edgekit-Replica header).
    Exit codes: 0 stopped; 1 Ray Serve could not start the replicas; 2 bad input (no run, no decision, an
    artifact without its sidecar).
    """
    try:
        import fastapi  # noqa: F401
        import uvicorn
    except ImportError:
        raise EdgekitError("edgekit serve needs the serve extra: pip install 'edgekit[serve]'") from None
    if run_dir is None and artifact is None:
        raise EdgekitError("give a run directory (its deploy.json chooses the model) or --artifact FILE")
    config = {"run_dir": str(run_dir) if run_dir else None, "target": target, "artifact": str(artifact) if artifact
              else None, "runtime": runtime, "allow_proxy": allow_proxy, "threads": threads,
              "limits": {"max_body_mb": max_body_mb, "max_pixels": max_pixels, "batch_window_ms": batch_window_ms,
                         "max_batch": max_batch, "warmup_s": warmup_s}}
    ray = ray or ray_address is not None
    if (replicas > 1 or replica_cpus != 1.0) and not ray:
        raise EdgekitError("--replicas and --replica-cpus are Ray Serve's: add --ray (one box: --workers N)")
    if ray and workers > 1:
        raise EdgekitError("--workers is for one box's uvicorn; with --ray scale with --replicas N")
    from .serve.app import app_from_config

    app_from_config(config)  # bad input fails here, in this process, with exit 2 (before any server starts)
    if ray:
        from .serve.ray_serve import serve_on_ray

        config["threads"] = threads or max(1, round(replica_cpus))  # not every core of the box per replica
        serve_on_ray(config, ray_address, replicas, replica_cpus, host, port)
        return
    os.environ[CONFIG_ENV] = json.dumps(config)
    uvicorn.run("edgekit.serve_cli:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


def app_from_env():
    """uvicorn's factory in each worker process."""
    from .serve.app import app_from_config

    return app_from_config(json.loads(os.environ[CONFIG_ENV]))
