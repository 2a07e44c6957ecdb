"""Reading JSON files users can edit or truncate (manifests, sidecars, stored baselines): one line, no traceback."""

from __future__ import annotations

import json
import math
from pathlib import Path

from .errors import EdgekitError


def is_finite_number(v: object) -> bool:
    """A real JSON number: int or float, not bool, not NaN or infinity (json.loads accepts both)."""
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_json_object(path: str | Path, what: str) -> dict:
    path = Path(path)
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EdgekitError(f"{what} not found", path=path) from None
    except UnicodeDecodeError:
        raise EdgekitError(f"not a {what}: not UTF-8 text", path=path) from None
    except json.JSONDecodeError as exc:
        raise EdgekitError(f"line {exc.lineno}: not valid JSON ({exc.msg}); expected a {what}", path=path) from None
    if not isinstance(doc, dict):
        raise EdgekitError(f"not a {what}: expected a JSON object", path=path)
    return doc


def check_preprocess(pre: object, path: Path) -> dict | None:
    """A sidecar's `preprocess` (input_size, mean, std), or None when absent."""
    if pre is None:
        return None

    ok = (isinstance(pre, dict) and isinstance(pre.get("input_size"), int) and not isinstance(pre["input_size"], bool)
          and 8 <= pre["input_size"] <= 1024
          and all(isinstance(pre.get(k), list) and len(pre[k]) == 3 and all(is_finite_number(x) for x in pre[k])
                  for k in ("mean", "std"))
          and all(x > 0 for x in pre["std"]))
    if not ok:
        raise EdgekitError("key 'preprocess': expected {input_size: 8..1024, mean: [3 numbers], std: [3 numbers > 0]}"
                           f", got {pre!r}", path=path)
    return pre
