"""`edgekit ... --nproc N`: the same command again under torchrun's launcher, N processes on this machine, and
one line when the job fails instead of torchrun's page of tracebacks."""

from __future__ import annotations

import logging
import os

from ..argv import drop_option
from ..errors import EdgekitError
from .distributed import TIMEOUT_S


class JobFailed(EdgekitError):
    """A rank of a data-parallel job died or timed out: exit code 1, not bad input."""

    exit_code = 1


def relaunch(argv: list[str], nproc: int) -> None:
    """Run the command on `nproc` local processes (torchrun --standalone) and return when all finish. When a rank
    dies, torchrun stops the others; that ends here as one line naming the rank and how it ended."""
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    os.environ.setdefault("OMP_NUM_THREADS", "1")  # one thread a rank unless told otherwise (and no banner)
    logging.getLogger("torch.distributed.elastic").setLevel(logging.CRITICAL)  # the one line below says it
    try:
        run(parse_args(["--standalone", f"--nproc-per-node={nproc}", "-m", "edgekit", *drop_option(argv, "--nproc")]))
    except ChildFailedError as exc:
        rank, failure = exc.get_first_failure()  # the rank that ended first: the others were stopped for it
        how = f"signal {failure.signal_name()}" if failure.exitcode < 0 else f"exit code {failure.exitcode}"
        raise JobFailed(f"the {nproc}-process job stopped: rank {rank} (pid {failure.pid}) ended with {how}; "
                        f"torchrun stopped the other ranks (a rank that hangs times out after {TIMEOUT_S:g} s, "
                        "EDGEKIT_DIST_TIMEOUT_S)") from None
