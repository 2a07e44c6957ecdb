"""Headless Chromium through Playwright's Python API, with the machine's own browser (`executable_path`): Playwright's
browser download is never used. A page's files come from a loopback server of its own whose answers carry the
headers that make the page cross-origin isolated, which gives performance.now() its fine resolution."""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from ..errors import EdgekitError

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# Without the background-networking flags Chromium keeps trying Google's hosts, which a closed network refuses.
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage"]
ISOLATION = {"Cross-Origin-Opener-Policy": "same-origin", "Cross-Origin-Embedder-Policy": "require-corp"}
INSTALL_HINT = "install Debian's chromium (apt install chromium) or set EDGEKIT_CHROMIUM to a Chrome/Chromium binary"


def find_chromium() -> Path | None:
    """$EDGEKIT_CHROMIUM, else the first Chromium or Chrome on PATH."""
    env = os.environ.get("EDGEKIT_CHROMIUM")
    if env:
        return Path(env) if Path(env).is_file() else None
    found = next((shutil.which(c) for c in CANDIDATES if shutil.which(c)), None)
    return Path(found) if found else None


def unavailable_reason() -> str | None:
    """Why a browser cannot start here (one line), or None when it can."""
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "the playwright package is missing (pip install 'edgekit[web]')"
    if find_chromium() is None:
        return f"no Chromium found; {INSTALL_HINT}"
    return None


Responder = Callable[[str], tuple[bytes, str] | None]  # path -> (body, media type), or None for 404


@contextmanager
def chromium() -> Iterator[object]:
    """A Playwright browser: this machine's headless Chromium, with the flags a closed network needs. The caller
    opens pages; the browser closes on exit."""
    reason = unavailable_reason()
    if reason:
        raise EdgekitError(f"cannot start a browser: {reason}")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(find_chromium()), args=FLAGS, headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def browser_page(respond: Responder, timeout_s: float = 60.0) -> Iterator[tuple[object, str]]:
    """(page, origin): a page in headless Chromium and the address of a loopback server whose answers come from
    `respond(path)`. The server binds 127.0.0.1 on a free port, lives as long as the page, and sends the headers
    that make the page cross-origin isolated (127.0.0.1 is a secure context)."""
    server = _LoopbackServer(respond)
    try:
        with chromium() as browser:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            yield page, server.origin
    finally:
        server.close()


class _LoopbackServer:
    """A threaded HTTP server on 127.0.0.1 for one page's files. Chromium fetches them directly; Playwright's
    request interception would carry every byte (a 14 MB WASM file) through its driver as base64."""

    def __init__(self, respond: Responder):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server hook name
                answer = respond(self.path.split("?", 1)[0])
                body, media_type = answer if answer is not None else (b"not found", "text/plain")
                self.send_response(200 if answer is not None else 404)
                for k, v in {**ISOLATION, "Content-Type": media_type, "Content-Length": str(len(body)),
                             "Cache-Control": "no-store"}.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # quiet: the bench's output is JSON on stdout
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.origin = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
