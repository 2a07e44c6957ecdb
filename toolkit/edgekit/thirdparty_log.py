"""Keep third-party noise out of the terminal: it goes to `runs/<name>/log.txt`, edgekit's own output does not.

Libraries print things a user cannot act on: C++ banners (oneDNN), a failed optional `.so` load in torchao,
deprecation warnings from torch's pytree, TensorFlow-style logs from the LiteRT converter. Much of it is written
by native code straight to file descriptors 1 and 2, so redirecting `sys.stdout` is not enough: the descriptors
themselves are pointed at the log for the duration, and edgekit's consoles keep writing to the terminal through
duplicates of the originals. Child processes (data workers) inherit the redirection.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import rich
from rich.console import Console

LOG_NAME = "log.txt"  # in the run directory


class _ConsoleHandler(logging.Handler):
    """edgekit's own log records (`logging.getLogger("edgekit")`) still reach the user, as warnings."""

    def __init__(self, console: Console):
        super().__init__(logging.WARNING)
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        self.console.print(f"[yellow]warning[/yellow] {record.getMessage()}", highlight=False)


@contextlib.contextmanager
def third_party_output_to(log_path: Path, stdout_console: Console, stderr_console: Console) -> Iterator[None]:
    log_path.parent.mkdir(parents=True, exist_ok=True)
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    log = open(log_path, "a", buffering=1)  # noqa: SIM115 - closed in finally, after the descriptors are restored
    log.write(f"--- {datetime.now(timezone.utc).isoformat(timespec='seconds')} edgekit {' '.join(sys.argv[1:])}\n")
    log.flush()
    saved = {fd: os.dup(fd) for fd in (1, 2)}
    terminals = {fd: os.fdopen(os.dup(saved[fd]), "w", buffering=1) for fd in (1, 2)}
    # rich's global console carries edgekit's progress bars and epoch lines (rich.progress uses it by default).
    consoles = [(stdout_console, stdout_console.file, 1), (stderr_console, stderr_console.file, 2),
                (rich.get_console(), rich.get_console().file, 1)]
    edgekit_log = logging.getLogger("edgekit")
    handler = _ConsoleHandler(stderr_console)
    old_propagate = edgekit_log.propagate
    try:
        for console, _, fd in consoles:
            console.file = terminals[fd]
        for fd in (1, 2):
            os.dup2(log.fileno(), fd)
        edgekit_log.addHandler(handler)
        edgekit_log.propagate = False
        with warnings.catch_warnings():
            warnings.simplefilter("default")  # shown once each, into the log (sys.stderr now points there)
            yield
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        for fd in (1, 2):
            os.dup2(saved[fd], fd)
            os.close(saved[fd])
        for console, original, _ in consoles:
            console.file = original
        for f in terminals.values():
            f.close()
        edgekit_log.removeHandler(handler)
        edgekit_log.propagate = old_propagate
        log.close()
