"""The HTTP API: `POST /v1/landmarks`, `GET /v1/model`, `/healthz`, `/readyz`, `/metrics`, `/docs` (OpenAPI), and
`/`, a page that runs a photo or the webcam through the API (server mode) or through onnxruntime-web in the page
(in-browser mode, with the ONNX files and the pinned runtime files served here) and draws the landmarks.

Every client error is a 4xx with `{"error": ..., "detail": ...}`; nothing the client sends is written to disk; a
body over the limit is refused from its Content-Length, or as soon as the stream passes it, before it is read whole.
"""

from __future__ import annotations

import asyncio
import threading
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import EdgekitError
from ..predict import face_input, read_outputs
from ..web import assets
from .batching import MicroBatcher
from .images import ClientError, decode_image, parse_box, read_limited, split_upload
from .model import ServedModel

WEB_DIR = Path(__file__).parent.parent / "web"


@dataclass(frozen=True)
class Limits:
    max_body_mb: float = 10.0
    max_pixels: int = 40_000_000  # larger images are refused before they are decoded (decompression bombs)
    batch_window_ms: float = 0.0  # 0: no micro-batching
    max_batch: int = 8
    warmup_s: float = 0.5


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("edgekit_requests", "HTTP requests by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("edgekit_request_seconds", "Request latency by route", ["route"],
                                 registry=self.registry)
        self.inference = Histogram("edgekit_inference_seconds", "Model time per batch", registry=self.registry,
                                   buckets=(.0005, .001, .002, .005, .01, .02, .05, .1, .2, .5, 1))
        self.batch = Histogram("edgekit_batch_size", "Faces per model call", registry=self.registry,
                               buckets=(1, 2, 4, 8, 16, 32, 64))
        self.queue = Gauge("edgekit_queue_depth", "Faces waiting for the model", registry=self.registry)


class CountRequests:
    """Counts and times every request by route template, as plain ASGI middleware (Starlette's
    BaseHTTPMiddleware wraps each response in a stream and costs a sizeable share of a 5 ms request)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start, status = time.perf_counter(), [500]

        async def send_and_note(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            # Label by route template only: a client probing random paths must not grow the label set.
            path = getattr(scope.get("route"), "path", None) or "unmatched"
            self.metrics.requests.labels(path, scope["method"], str(status[0])).inc()
            self.metrics.latency.labels(path).observe(time.perf_counter() - start)


def error(status: int, kind: str, detail: str) -> JSONResponse:
    return JSONResponse({"error": kind, "detail": detail}, status_code=status)


def create_app(model: ServedModel, limits: Limits = Limits()) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app):  # load in a thread: /healthz answers at once, /readyz once the model is warm
        if not model.ready.is_set():  # a Ray Serve replica loaded it before it took traffic
            threading.Thread(target=model.load, args=(limits.warmup_s,), daemon=True).start()
        yield

    app = FastAPI(title="edgekit serve", version=model.card.get("edgekit_version", ""), lifespan=lifespan,
                  description="Facial landmarks and part states from the artifact edgekit chose for this target.")
    metrics = Metrics()
    batcher = MicroBatcher(model, metrics, limits.batch_window_ms, limits.max_batch)
    app.state.model, app.state.metrics = model, metrics

    app.add_middleware(CountRequests, metrics=metrics)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException):
        kind = {404: "not found", 405: "method not allowed"}.get(exc.status_code, "http error")
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        return error(exc.status_code, kind, f"{request.method} {request.url.path}: {detail}")

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError):
        return error(422, "invalid request", "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
                                                     for e in exc.errors()))

    @app.exception_handler(ClientError)
    async def _client(request: Request, exc: ClientError):
        return error(exc.status, exc.kind, exc.detail)

    @app.post("/v1/landmarks", summary="Landmarks and part states of the face in an image",
              description="Body: a JPEG, PNG or WebP image, raw (Content-Type image/...) or as multipart field "
                          "`image`. Optional `box=x0,y0,x1,y1` (pixels, query or form field); without it the "
                          "largest frontal face is found.")
    async def landmarks(request: Request):
        if not model.ready.is_set():
            return error(503, "not ready", "the model is loading; retry when /readyz says ready")
        t0 = time.perf_counter()
        body = await read_limited(request, int(limits.max_body_mb * 2**20))
        data, form_box = split_upload(request.headers.get("content-type", ""), body)
        image = decode_image(data, limits.max_pixels)
        box_text = request.query_params.get("box") or form_box
        t1 = time.perf_counter()
        if box_text:
            box, detected = parse_box(box_text, image.shape), False
        else:
            box, detected = await asyncio.get_running_loop().run_in_executor(None, _find_face, image), True
        outputs = await batcher.run(face_input(image, box, model.preprocess))
        t2 = time.perf_counter()
        pred = read_outputs(outputs, box, detected)
        # A JSONResponse of plain floats skips FastAPI's generic encoder (0.5 ms of a ~5 ms request here).
        return JSONResponse({"model": model.card["id"], "scheme": model.card.get("scheme"),
                             "box": [float(v) for v in pred.box], "detected": detected,
                             "landmarks": pred.landmarks.astype(float).tolist(), "states": pred.states,
                             "timings_ms": {"decode": 1000 * (t1 - t0), "model": 1000 * (t2 - t1),
                                            "total": 1000 * (time.perf_counter() - t0)}})

    @app.get("/v1/model", summary="The served model's card")
    async def card():
        return {**model.card, "ready": model.ready.is_set()}

    page = (Path(__file__).parent / "page.html").read_text()

    @app.get("/", summary="A page that sends a photo or the webcam to the API and draws the result",
             response_class=HTMLResponse)
    async def index():
        return page

    @app.get("/v1/model/onnx/{name}", summary="An ONNX file the page runs in the browser (one the card lists)")
    async def onnx_file(name: str):
        path = model.browser_file(name)
        if path is None:
            return error(404, "not found", f"{name!r} is not one of {model.card['browser_files']}")
        return FileResponse(path, media_type="application/octet-stream")

    @app.get("/static/edgekit-ort.js", summary="The page's in-browser side (preprocessing, onnxruntime-web calls)")
    async def edgekit_ort_js():
        return FileResponse(WEB_DIR / "edgekit-ort.js", media_type="text/javascript")

    @app.get("/static/ort/{name}", summary="onnxruntime-web's pinned JS and WASM files (never a CDN)")
    async def ort_file(name: str):
        if name not in assets.FILES:
            return error(404, "not found", f"{name!r} is not one of onnxruntime-web's served files")
        try:
            root = assets.checked_dir()
        except EdgekitError as exc:
            return error(404, "not fetched", str(exc))
        return FileResponse(root / name, media_type=assets.MEDIA_TYPES[Path(name).suffix])

    @app.get("/healthz", summary="The process answers")
    async def healthz():
        return {"status": "ok"}

    @app.get("/readyz", summary="The model is loaded and warmed up")
    async def readyz():
        ready = model.ready.is_set()
        return JSONResponse({"ready": ready}, status_code=200 if ready else 503)

    @app.get("/metrics", summary="Prometheus metrics")
    async def prometheus():
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def app_from_config(config: dict) -> FastAPI:
    """The application `edgekit serve` runs, from its options as JSON (the same in every worker or replica)."""
    if config["artifact"]:
        model = ServedModel.from_artifact(Path(config["artifact"]), config["runtime"])
    else:
        model = ServedModel.from_run(Path(config["run_dir"]), config["target"], config["allow_proxy"])
    model.threads = config["threads"]
    return create_app(model, Limits(**config["limits"]))


def _find_face(image):
    from ..predict import detect_face

    try:
        return detect_face(image, "request")
    except EdgekitError:
        raise ClientError(422, "no face found", "no frontal face found in the image; send box=x0,y0,x1,y1") from None
