"""`edgekit bench`, kept apart from cli.py (which registers it) so the command module stays short."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .consoles import console, out_console
from .data_cli import DATA_HELP
from .errors import EdgekitError


def bench(
    target: Annotated[str, typer.Option(help="Target name (see `edgekit targets list`) or YAML path.")] = "cpu",
    run: Annotated[Path | None, typer.Option(help="Compress run directory; default: the latest under runs/.")] = None,
    artifact: Annotated[list[Path] | None, typer.Option(help="Bench these files instead of a run (repeatable).")]
    = None,
    quick: Annotated[bool, typer.Option(help="Short protocol for smoke tests (figures not comparable).")] = False,
    out: Annotated[Path | None, typer.Option(help="Output folder; default <run>/bench/<target>/.")] = None,
    host: Annotated[list[str] | None, typer.Option(
        help="Bench on user@host over ssh (overrides the target's host/hosts). More than once: a fleet, every host "
             "at once; reports per host, the class median and spread, and the outlier host.")] = None,
    ssh_config: Annotated[Path | None, typer.Option(help="ssh config file to use (ssh -F).")] = None,
    remote_python: Annotated[str, typer.Option(help="Python on the remote host (needs numpy and the runtime).")]
    = "python3",
    data: Annotated[str | None, typer.Option(help="Labeled evaluation data; default: the run's recipe eval data "
                                             "when it is a built-in set (distill_int8: synth@3:test:1000), else "
                                             "synth:test. " + DATA_HELP)] = None,
    trials: Annotated[int | None, typer.Option(min=1, help="Trials per cell, each in a fresh process.")] = None,
    threads: Annotated[int | None, typer.Option(min=1, help="Threads; default: the target's.")] = None,
    batch_sizes: Annotated[str | None, typer.Option(help="Throughput batch sizes, e.g. 1,8,32.")] = None,
    eval_images: Annotated[int | None, typer.Option(min=0, help="Images for accuracy (0: skip).")] = None,
    reference: Annotated[bool, typer.Option(help="Include the run's teacher as the reference row.")] = True,
    quiet: Annotated[bool, typer.Option(help="No progress bar.")] = False,
) -> None:
    """Measure latency, throughput, memory and accuracy of every artifact through its own runtime.

    Writes bench.json (schema edgekit-bench/1), table.md, pareto.png and report.html. Trials run in fresh
    processes, locally or on the target's `host:` over ssh. One failing cell never stops the sweep.
    Exit codes: 0 at least one cell measured; 1 every cell failed (the report is still written); 2 bad input.
    """
    from .bench.api import BenchOptions
    from .bench.api import bench as run_bench
    from .bench.report import console_table
    from .compress_cli import resolve_targets

    if batch_sizes is not None:
        try:
            sizes = tuple(int(b) for b in batch_sizes.split(","))
            if not sizes or min(sizes) < 1:
                raise ValueError
        except ValueError:
            raise EdgekitError(f"--batch-sizes: expected positive integers like 1,8,32, got {batch_sizes!r}") from None
    else:
        sizes = None
    (tgt,) = resolve_targets(target) if "," not in target else (None,)
    if tgt is None:
        raise EdgekitError("--target takes one target for bench; run bench once per target")
    opts = BenchOptions(run=run, artifacts=artifact or None, quick=quick, out=out, hosts=host or None,
                        ssh_config=ssh_config,
                        remote_python=remote_python, data=data, trials=trials, threads=threads, batch_sizes=sizes,
                        eval_images=eval_images, reference=reference, progress=not quiet)
    doc, paths = run_bench(tgt, opts)
    out_console.print(console_table(doc))
    for r in doc["records"]:
        for w in r.get("warnings", []):
            console.print(f"[yellow]warning[/yellow] {r['variant']} {r['precision']} {r['format']}/{r['runtime']}: {w}",
                          highlight=False)
        if r["status"] != "ok":
            console.print(f"[red]{r['status']}[/red] {r['variant']} {r['precision']} {r['format']}/{r['runtime']}: "
                          f"{r.get('error')}", highlight=False)
    if "fleet" in paths:
        fleet = doc["fleet"]
        outliers = ", ".join(fleet["outlier_hosts"]) or "none"
        console.print(f"fleet of {len(fleet['hosts'])}: the table is the class median; per host under "
                      f"{paths['json'].parent / 'hosts'}/; outlier hosts: {outliers}", highlight=False)
    console.print(f"wrote {paths['json']}, {paths['table'].name}, {paths['pareto'].name}, {paths['html'].name} "
                  f"({doc['wall_s']} s)", highlight=False)
    if doc["records"] and all(r["status"] != "ok" for r in doc["records"]):
        console.print(f"[red]error:[/red] every one of the {len(doc['records'])} cells failed; nothing was measured",
                      highlight=False)
        raise typer.Exit(1)
