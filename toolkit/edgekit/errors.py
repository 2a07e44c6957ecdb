"""User-facing errors.

Anything a user can cause (a bad file, key or value) raises `EdgekitError` with one line that names the
file, the line or key, and what was expected. The CLI prints it without a traceback and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path


class EdgekitError(Exception):
    """Bad input from the user: printed as one line, exit code 2."""

    exit_code = 2

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None):
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)
