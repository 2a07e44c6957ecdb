"""onnxruntime-web's JS and WASM files, taken once from the npm registry at a pinned version and checked by SHA-256.

`edgekit data fetch onnxruntime-web` (and `make data`) runs `npm pack` for the pinned tarball, checks its hash and
keeps the three files the page needs in the data cache; the server and the browser runtime serve them from there.
Nothing is ever loaded from a CDN.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from .. import pinned
from ..data.dlib_faces import cache_dir
from ..errors import EdgekitError
from ..pinned import extract_checked, sha256_bytes, write_all

NAME = "onnxruntime-web"
VERSION = "1.30.0"
TARBALL = f"{NAME}-{VERSION}.tgz"
TARBALL_SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"
# The WASM-only bundle (no WebGL/WebGPU code) and the SIMD build it loads; ORT web picks the single-threaded path
# when numThreads is 1 or the page is not cross-origin isolated.
FILES = {
    "ort.wasm.min.js": "faece07e84faa9001f5104bbe4e5c70861d06cb2376a0dea1fa0ad33a67adc81",
    "ort-wasm-simd-threaded.mjs": "e13f7f94fc51b4ca72b12faeb1ee95f4ace6dfbc8939bc718aabdc0a27c4299b",
    "ort-wasm-simd-threaded.wasm": "3398c10d07d229bd91b364548e130e0e51a8e5704b88c7c083ebbeb78842dee2",
}
MEDIA_TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".wasm": "application/wasm"}
FETCH_HINT = f"edgekit data fetch {NAME} (npm pack {NAME}@{VERSION} from the npm registry, 33 MB, once)"


def assets_dir() -> Path:
    return cache_dir() / f"{NAME}-{VERSION}"


def missing_or_changed(root: Path | None = None) -> list[str]:
    return pinned.missing_or_changed(root or assets_dir(), FILES)


def checked_dir() -> Path:
    """The folder with every file present and intact, or a one-line error that says how to fetch it."""
    root = assets_dir()
    bad = missing_or_changed(root)
    if bad:
        state = "not fetched" if not root.exists() else f"{len(bad)} file(s) missing or changed ({bad[0]})"
        raise EdgekitError(f"{NAME} {VERSION}: {state}; run {FETCH_HINT}", path=root)
    return root


def fetch(progress: bool = True) -> Path:
    """`npm pack` the pinned version, check the tarball and each kept file, write them atomically."""
    root = assets_dir()
    if not missing_or_changed(root):
        return root
    npm = shutil.which("npm")
    if npm is None:
        raise EdgekitError(f"npm is not installed; it fetches {NAME} from the npm registry (Debian: apt install npm)")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=root, prefix=".fetch-") as tmp:
        done = subprocess.run([npm, "pack", f"{NAME}@{VERSION}", "--pack-destination", tmp, "--silent"],
                              capture_output=True, text=True, timeout=600)
        tarball = Path(tmp) / TARBALL
        if done.returncode != 0 or not tarball.is_file():
            last = (done.stderr.strip().splitlines() or ["(no message)"])[-1]
            raise EdgekitError(f"npm pack {NAME}@{VERSION} failed: {last}")
        if sha256_bytes(tarball.read_bytes()) != TARBALL_SHA256:
            raise EdgekitError(f"is not the pinned {NAME} {VERSION} tarball (SHA-256 mismatch)", path=tarball)
        write_all(root, extract_checked(tarball, "package/dist/", FILES, "dist/"))
    return root


def provenance() -> dict:
    return {"source": f"npm registry, {NAME}@{VERSION}", "sha256": TARBALL_SHA256, "read_from": str(assets_dir()),
            "licence": "MIT (Microsoft)", "files": sorted(FILES), "copied_into_repository": False}
