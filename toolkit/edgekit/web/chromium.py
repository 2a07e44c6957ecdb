"""Headless Chromium through Playwright's Python API, with the machine's own browser (`executable_path`): Playwright's
browser download is never used. Every request the page makes is answered from Python (`page.route`), so the page
needs no server and reaches no network; the answers carry the headers that make it cross-origin isolated, which
gives performance.now() its fine resolution."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
def browser_page(origin: str, respond: Responder, timeout_s: float = 60.0) -> Iterator[object]:
    """A Playwright page in headless Chromium whose requests under `origin` are answered by `respond(path)`; any
    other request is aborted. Closes the browser on exit."""
    reason = unavailable_reason()
    if reason:
        raise EdgekitError(f"cannot start a browser: {reason}")
    from playwright.sync_api import sync_playwright

    def handle(route):
        url = route.request.url
        if not url.startswith(origin):
            route.abort()
            return
        answer = respond(url[len(origin):].split("?", 1)[0] or "/")
        if answer is None:
            route.fulfill(status=404, body=b"not found", headers=ISOLATION)
        else:
            body, media_type = answer
            route.fulfill(status=200, body=body, content_type=media_type, headers=ISOLATION)

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(find_chromium()), args=FLAGS, headless=True)
        try:
            page = browser.new_page()
            page.set_default_timeout(timeout_s * 1000)
            page.route("**/*", handle)
            yield page
        finally:
            browser.close()
