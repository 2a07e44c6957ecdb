"""`bench()`: the Python API behind `edgekit bench` (the CLI only parses options and prints)."""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ..config.target import Target
from ..errors import EdgekitError
from ..runtime.registry import runtime as runtime_row
from .deploy_file import chosen_files, run_relative
from .protocol import DEFAULT_DATA, FULL, QUICK, Protocol
from .remote import Remote
from .report import write_outputs
from .sweep import Cell, discover, eval_set, from_files, latest_run, sweep


@dataclass
class BenchOptions:
    run: Path | None = None
    artifacts: list[Path] | None = None
    quick: bool = False
    out: Path | None = None
    host: str | None = None
    hosts: list[str] | None = None  # a fleet: every host benched at once (overrides host and the target's)
    ssh_config: Path | None = None
    remote_python: str = "python3"
    data: str | None = None  # None: a run's recipe eval data when it is a built-in set, else DEFAULT_DATA
    trials: int | None = None
    threads: int | None = None
    batch_sizes: tuple[int, ...] | None = None
    eval_images: int | None = None
    reference: bool = True
    progress: bool = True
    protocol: Protocol | None = None  # overrides quick/full (the deploy decision's short protocol)


def run_eval_data(run: Path) -> str:
    """The data a run's recipe judged its budgets on (`distill_int8`: SynthFaces v3 test), when it is a built-in
    labeled set, so bench's NME is the one the compress table and the deploy decision show; else DEFAULT_DATA
    (your own eval data may be unlabeled or in another scheme)."""
    from ..data.datasets import is_built_in
    from ..run_manifest import RunManifest

    try:
        spec = RunManifest.read(run).recipe["data"]["eval"]
    except (EdgekitError, KeyError, TypeError):
        return DEFAULT_DATA
    return spec if isinstance(spec, str) and is_built_in(spec) else DEFAULT_DATA


def _gpu_present() -> bool:
    return shutil.which("nvidia-smi") is not None or Path("/etc/nv_tegra_release").exists()


def runtime_usable_here(runtime: str) -> tuple[bool, str]:
    """Whether `runtime` can run on this machine, and why not."""
    row = runtime_row(runtime)
    if not row.installed():
        return False, f"{' or '.join(row.modules)} is not installed"
    if row.gpu and not _gpu_present():
        return False, "there is no NVIDIA GPU here"
    return True, ""


def hosts_of(target: Target, opts: BenchOptions) -> list[str]:
    """Where to bench: --host (once or more), else the target's `hosts:` or `host:`; empty: here."""
    return list(opts.hosts or ([opts.host] if opts.host else None) or target.fleet)


def check_reachable(target: Target, opts: BenchOptions) -> None:
    """Fail early, with what to do, when none of the target's runtimes can run here and no device is named."""
    if hosts_of(target, opts):
        return
    wanted = sorted(set(target.concrete_runtimes()))
    usable = {rt: runtime_usable_here(rt) for rt in wanted}
    if wanted and not any(ok for ok, _ in usable.values()):
        why = "; ".join(f"{rt}: {reason}" for rt, (_, reason) in usable.items())
        raise EdgekitError(
            f"target {target.name!r} cannot be benched on this machine ({why}). Set `host: user@device` in its "
            f"target file (or pass --host user@device) to bench on the device over SSH, or run `edgekit bench "
            f"--target {target.name}` on the device itself")


def resolve_protocol(opts: BenchOptions) -> Protocol:
    p = opts.protocol or (QUICK if opts.quick else FULL)
    changes = {}
    if opts.trials is not None:
        changes["trials"] = opts.trials
    if opts.batch_sizes:
        changes["batch_sizes"] = tuple(opts.batch_sizes)
    if opts.eval_images is not None:
        changes["eval_images"] = opts.eval_images
    return replace(p, **changes)


def bench(target: Target, opts: BenchOptions) -> tuple[dict, dict[str, Path]]:
    """Bench every artifact of a run (or the given files) on `target`; write JSON, table, Pareto PNG and HTML."""
    check_reachable(target, opts)  # first: "cannot run here" says more than "no artifacts for it"
    if opts.artifacts:
        cells, preprocess = from_files(opts.artifacts, target)
        out = opts.out or Path(opts.artifacts[0]).parent / "bench" / target.name
    else:
        run = opts.run or latest_run()
        cells, preprocess = discover(run, target, reference=opts.reference)
        out = opts.out or run / "bench" / target.name
        if opts.data is None:
            opts = replace(opts, data=run_eval_data(run))
    hosts = hosts_of(target, opts)
    if len(hosts) > 1:
        return _bench_fleet(target, cells, preprocess, opts, hosts, None if opts.artifacts else run, out)
    doc = bench_cells(target, cells, preprocess, opts)
    if not opts.artifacts:
        mark_chosen(doc, run, target.name)
    return doc, write_outputs(doc, out)


def _bench_fleet(target: Target, cells: list[Cell], preprocess: dict, opts: BenchOptions, hosts: list[str],
                 run: Path | None, out: Path) -> tuple[dict, dict[str, Path]]:
    """Every host at once; returns the class document (median across hosts) and writes every report."""
    from . import fleet

    docs = fleet.on_every_host(hosts, lambda h: bench_cells(target, cells, preprocess, fleet.per_host_options(opts, h)))
    summary = fleet.summarize(docs)
    doc = fleet.class_document(docs, summary)
    doc["fleet"] = {k: summary[k] for k in ("hosts", "outlier_hosts", "outlier_ratio", "outlier_cells")}
    for d in (*docs.values(), doc):
        if run is not None:
            mark_chosen(d, run, target.name)
    return doc, fleet.write_fleet(docs, summary, doc, out, write_outputs)


def bench_cells(target: Target, cells: list[Cell], preprocess: dict, opts: BenchOptions) -> dict:
    """Bench the given cells (from one run, files, or several runs) in one sweep; returns the bench document."""
    check_reachable(target, opts)
    protocol = resolve_protocol(opts)
    hosts = hosts_of(target, opts)
    if len(hosts) > 1:
        raise EdgekitError(f"bench_cells measures one host; got {len(hosts)} (bench() runs a fleet)")
    remote = Remote(hosts[0], opts.ssh_config, opts.remote_python) if hosts else None
    size = int(preprocess["input_size"])
    opts = replace(opts, data=opts.data or DEFAULT_DATA)
    with tempfile.TemporaryDirectory(prefix="edgekit-bench-") as tmp:
        npz = eval_set(opts.data, protocol.eval_images, preprocess, Path(tmp) / "eval.npz") \
            if protocol.eval_images > 0 else None
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, disable=not opts.progress, transient=True) as bar:
            task = bar.add_task("bench", total=len(cells) * protocol.trials)
            doc = sweep(cells, target, protocol, npz, [1, 3, size, size], remote, opts.threads,
                        progress=_Bar(bar, task))
    doc["data"] = opts.data
    return doc


def mark_chosen(doc: dict, run: Path, target: str) -> None:
    """Flag the cell the run's deploy.json chose for this target (`chosen: true`), if there is one; a pick that
    was measured off the target's hardware is flagged `proxy: true` as well."""
    file, runtime, status = chosen_files(run).get(target, (None, None, None))
    for r in doc["records"]:
        r["chosen"] = file is not None and run_relative(r["artifact"], run) == file and r["runtime"] == runtime
        r["proxy"] = r["chosen"] and status == "proxy"


class _Bar:
    def __init__(self, bar: Progress, task):
        self.bar, self.task = bar, task

    def describe(self, text: str) -> None:
        self.bar.update(self.task, description=text)

    def advance(self, n: int = 1) -> None:
        self.bar.advance(self.task, n)
