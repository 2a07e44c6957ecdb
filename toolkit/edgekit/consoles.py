"""The two rich consoles every command module prints through: messages to stderr, results to stdout."""

from __future__ import annotations

import sys

from rich.console import Console

console = Console(stderr=True)
# Tables are wide; when stdout is a file or pipe, rich would wrap them at 80 columns.
out_console = Console() if sys.stdout.isatty() else Console(width=200)
