"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename over the target.

A crash or Ctrl-C mid-write leaves either the old file or the new one, never a torn one.
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to `target`; on success it is renamed onto `target`."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp_path, mode = _create_temp(target)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        # Some writers (e.g. safetensors) recreate the file as 0600; give it back the mode a plain open() gives
        # (0666 minus the umask), read from the file we created, so the process umask is never touched.
        os.chmod(tmp_path, mode)
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _create_temp(target: Path) -> tuple[Path, int]:
    """A new empty file next to `target`, created with mode 0666 so the kernel applies the umask, as open() does
    (mkstemp would force 0600). Returns it and its resulting permission bits."""
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(6)}.tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue
        try:
            return tmp, os.fstat(fd).st_mode & 0o777
        finally:
            os.close(fd)
    raise FileExistsError(f"no free temporary name next to {target}")


def write_bytes(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text(target: str | Path, text: str) -> None:
    write_bytes(target, text.encode("utf-8"))


def write_json(target: str | Path, obj: Any) -> None:
    write_text(target, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_with(target: str | Path, writer: Callable[[Path], None]) -> None:
    """Let a library write to a temporary path (e.g. `fig.savefig`), then move it into place."""
    with atomic_path(target) as tmp:
        writer(tmp)
