"""deploy.json on disk: its name and schema, how it names artifacts, and what it chose per target.

Apart from the decision (`bench.deploy`), so that bench can mark the chosen cell without importing the decision,
which itself runs bench.
"""

from __future__ import annotations

from pathlib import Path

from ..jsonio import read_json_object

SCHEMA = "edgekit-deploy/1"
DEPLOY_FILE = "deploy.json"


def run_relative(artifact: str, run_dir: Path) -> str:
    """How deploy.json names an artifact: relative to the run directory when it lies inside it."""
    path = Path(artifact)
    return str(path.relative_to(run_dir)) if path.is_relative_to(run_dir) else str(path)


def chosen_files(run_dir: Path) -> dict[str, tuple[str, str, str]]:
    """target -> (artifact file, runtime, status) that the run's deploy.json picked ({} when there is none);
    status is `chosen`, or `proxy` for a pick measured off the target's hardware."""
    path = run_dir / DEPLOY_FILE
    if not path.exists():
        return {}
    doc = read_json_object(path, "deploy decision")
    out = {}
    for name, d in (doc.get("targets") or {}).items():
        c = d.get("chosen") if isinstance(d, dict) else None
        if isinstance(c, dict) and isinstance(c.get("file"), str):
            out[name] = (c["file"], c.get("runtime"), d.get("status", "chosen"))
    return out
