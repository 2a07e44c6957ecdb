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
) -> None:
    """Serve the chosen model over HTTP: POST /v1/landmarks, GET /v1/model, /healthz, /readyz, /metrics, /docs.

    The model is the artifact the run's deploy.json chose for --target (a proxy or an over-budget decision is
    refused unless --allow-proxy), run through its own runtime with its sidecar's preprocessing; or --artifact.
    The page at / runs a photo or the webcam on the server, or in the browser with onnxruntime-web on the FP32 or
    INT8 ONNX file beside the served one (`edgekit data fetch onnxruntime-web` first; `make data` does it).
    Exit codes: 0 stopped; 2 bad input (no run, no decision, an artifact without its sidecar).
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
    app_from_config(config)  # bad input fails here, in this process, with exit 2 (before uvicorn starts)
    os.environ[CONFIG_ENV] = json.dumps(config)
    uvicorn.run("edgekit.serve_cli:app_from_env", factory=True, host=host, port=port, workers=workers,
                log_level="warning")


def app_from_config(config: dict):
    from .serve.app import Limits, create_app
    from .serve.model import ServedModel

    if config["artifact"]:
        model = ServedModel.from_artifact(Path(config["artifact"]), config["runtime"])
    else:
        model = ServedModel.from_run(Path(config["run_dir"]), config["target"], config["allow_proxy"])
    model.threads = config["threads"]
    return create_app(model, Limits(**config["limits"]))


def app_from_env():
    """uvicorn's factory in each worker process."""
    return app_from_config(json.loads(os.environ[CONFIG_ENV]))
