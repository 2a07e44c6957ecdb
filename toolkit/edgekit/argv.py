"""Command lines recorded or passed on with one option taken out."""

from __future__ import annotations


def drop_option(args: list[str], option: str) -> list[str]:
    """`args` without `option VALUE` and `option=VALUE`."""
    out, skip = [], False
    for a in args:
        if skip:
            skip = False
        elif a == option:
            skip = True
        elif not a.startswith(option + "="):
            out.append(a)
    return out
