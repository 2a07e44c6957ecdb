"""onnxruntime-web (WASM, SIMD) in headless Chromium: the browser as a runtime the bench measures for real.

The session opens a page in the machine's Chromium (edgekit.web.chromium), loads the pinned onnxruntime-web files
and the ONNX artifact into it, and runs batches there. `run` copies the batch into the page and the outputs back;
`timed_runs` times `session.run` inside the page with performance.now(), so the bench's latency is what the page
sees, without the Python-to-browser round trip.
"""

from __future__ import annotations

import weakref
from pathlib import Path

import numpy as np

from .registry import Runtime, RuntimeUnavailable, register

HARNESS = b"""<!doctype html><meta charset="utf-8"><title>edgekit runtime</title>
<script src="/ort/ort.wasm.min.js"></script><script src="/edgekit-ort.js"></script>"""

_LOAD = """async ([threads]) => {
  window.session = await EdgekitOrt.createSession("/model.onnx", { threads, wasmPaths: "/ort/" });
  return [crossOriginIsolated, ort.env.versions ? ort.env.versions.web : null];
}"""
_RUN = """async (shape) => {
  const data = new Float32Array(await (await fetch("/input")).arrayBuffer());
  const outs = await EdgekitOrt.run(window.session, data, shape);
  return outs.map(o => ({ dims: o.dims, data: Array.from(o.data) }));
}"""
_TIME = """async ([shape, minRuns, minMs]) => {
  const data = new Float32Array(await (await fetch("/input")).arrayBuffer());
  return await EdgekitOrt.timeRuns(window.session, data, shape, minRuns, minMs);
}"""


def session(path: str | Path, runtime: str, threads: int | None, xnnpack: bool) -> BrowserSession:
    from ..web.chromium import unavailable_reason

    reason = unavailable_reason()
    if reason:
        raise RuntimeUnavailable(f"onnxruntime-web needs a browser: {reason}")
    return BrowserSession(path, threads or 1)


register(Runtime("onnxruntime-web", "onnxruntime-web", "onnx", (".onnx",), False, ("playwright",), ("playwright",),
                 session, "onnxruntime-web (WASM, SIMD) in headless Chromium", device_side=False,
                 default_for_files=False))


class BrowserSession:
    reference_runtime = "onnxruntime"  # the bench times and checks it beside ONNX Runtime CPU on the same file
    memory_in_process = False  # the model lives in Chromium's renderer, not in the runner's process

    def __init__(self, path: str | Path, threads: int = 1):
        import onnx

        from ..errors import EdgekitError
        from ..web import assets
        from ..web.chromium import browser_page

        try:
            ort_dir = assets.checked_dir()
        except EdgekitError as exc:
            raise RuntimeUnavailable(str(exc)) from None
        graph = onnx.load(str(path), load_external_data=False).graph
        self.input_shape = [d.dim_value or d.dim_param for d in graph.input[0].type.tensor_type.shape.dim]
        model = Path(path).read_bytes()
        script = (Path(__file__).parent.parent / "web" / "edgekit-ort.js").read_bytes()
        self._input = b""
        files = {"/": (HARNESS, "text/html"), "/model.onnx": (model, "application/octet-stream"),
                 "/edgekit-ort.js": (script, "text/javascript")}
        for name in assets.FILES:
            files[f"/ort/{name}"] = ((ort_dir / name).read_bytes(), assets.MEDIA_TYPES[Path(name).suffix])

        def respond(route_path: str):
            if route_path == "/input":
                return self._input, "application/octet-stream"
            return files.get(route_path)

        self._browser = browser_page(respond)
        page, origin = self._browser.__enter__()
        # Closes the browser when the session goes, or at interpreter exit (finalize's default).
        self._closer = weakref.finalize(self, self._browser.__exit__, None, None, None)
        try:
            page.goto(origin + "/")
            isolated, ort_web = page.evaluate(_LOAD, [threads])
        except Exception as exc:  # noqa: BLE001 - a page error is this runtime failing to load the file
            self.close()
            raise RuntimeUnavailable(f"{path}: onnxruntime-web could not load it ({str(exc).splitlines()[0]})") \
                from None
        self.page = page
        # What the figures depend on beyond the machine (the bench records it with the cell).
        self.info = {"browser": f"Chromium {page.context.browser.version}", "onnxruntime-web": ort_web,
                     "cross_origin_isolated": isolated, "threads": threads, "backend": "wasm (SIMD)"}

    def _send(self, batch: np.ndarray) -> list[int]:
        batch = np.ascontiguousarray(batch, np.float32)
        self._input = batch.tobytes()
        return list(batch.shape)

    def run(self, batch: np.ndarray) -> list[np.ndarray]:
        outs = self.page.evaluate(_RUN, self._send(batch))
        return [np.asarray(o["data"], np.float32).reshape(o["dims"]) for o in outs]

    def timed_runs(self, batch: np.ndarray, min_runs: int, min_s: float) -> list[float]:
        """Seconds per `session.run`, timed inside the page (the contract of runtime.timing.timed_runs)."""
        ms = self.page.evaluate(_TIME, [self._send(batch), int(min_runs), 1000.0 * float(min_s)])
        return [t / 1000.0 for t in ms]

    def close(self) -> None:
        self._closer()
