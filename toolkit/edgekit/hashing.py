"""Content hashes for cache keys, manifests and sidecars."""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def sha256_json(obj) -> str:
    """Hash of a JSON-able object with sorted keys (stable across runs)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()


def source_hash(root: Path) -> str:
    """Hash of every .py file under `root`, by relative path and content."""
    h = hashlib.sha256()
    for path in sorted(root.rglob("*.py")):
        h.update(path.relative_to(root).as_posix().encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


@lru_cache(maxsize=1)
def code_hash() -> str:
    """Hash of the edgekit package's own source, for cache keys: the version string alone does not change when the
    code does, so an edited checkout would otherwise resume from (and gate) artifacts the old code built."""
    return source_hash(Path(__file__).resolve().parent)
