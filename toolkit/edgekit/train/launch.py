"""`edgekit ... --nproc N`: the same command again under torchrun (`python -m torch.distributed.run`), N processes
on this machine, and one line when the job fails instead of torchrun's page of tracebacks."""

from __future__ import annotations

import subprocess
import sys

from ..errors import EdgekitError
from .distributed import TIMEOUT_S


def torchrun_argv(argv: list[str], nproc: int) -> list[str]:
    """This command's arguments without `--nproc N`, under torchrun on this host."""
    rest, skip = [], False
    for i, a in enumerate(argv):
        if skip:
            skip = False
            continue
        if a == "--nproc":
            skip = i + 1 < len(argv)
            continue
        if a.startswith("--nproc="):
            continue
        rest.append(a)
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
            "-m", "edgekit", *rest]


def relaunch(argv: list[str], nproc: int) -> None:
    """Run the command on `nproc` processes and return when they all finish; a failed job raises one line."""
    proc = subprocess.run(torchrun_argv(argv, nproc), stderr=subprocess.PIPE, text=True)
    if proc.returncode != 0:
        lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
        ours = next((ln for ln in reversed(lines) if ln.startswith("error:")), None)
        died = next((ln.strip() for ln in lines if "exitcode" in ln and "rank" in ln), None)
        raise EdgekitError(ours.removeprefix("error: ") if ours else
                           f"the {nproc}-process job stopped (exit {proc.returncode}): "
                           f"{died or (lines[-1] if lines else 'no message')}; a rank that died or hung stops the "
                           f"others within {TIMEOUT_S:g} s (EDGEKIT_DIST_TIMEOUT_S)")
