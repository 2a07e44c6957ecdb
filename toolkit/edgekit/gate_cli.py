"""`edgekit gate`, kept apart from cli.py (which registers it) so the command module stays short."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .consoles import console, out_console
from .errors import EdgekitError


def gate(
    candidate: Annotated[Path, typer.Option(help="The artifact under test (e.g. runs/x/exports/model.int8.onnx).")],
    baseline: Annotated[str | None, typer.Option(help="Baseline artifact for same-run A/B: a path, or "
                                                 "git:REV:path for the file as committed at REV.")] = None,
    stored: Annotated[Path | None, typer.Option(help="Stored baseline JSON (benchmarks/baselines/<target>.json) "
                                                "instead of a same-run baseline.")] = None,
    update_baseline: Annotated[Path | None, typer.Option(help="Measure --candidate and write it as the stored "
                                                         "baseline at this path (atomic), then exit.")] = None,
    target: Annotated[str, typer.Option(help="Target name, recorded with a stored baseline.")] = "cpu",
    blocks: Annotated[int, typer.Option(min=1, help="Blocks (each: baseline twice, candidate once, shuffled). "
                                        "Fewer than the test needs to reach p < alpha (7 at 0.01) is inconclusive; "
                                        "12 leave room for one disturbed block.")] = 12,
    threshold: Annotated[float | None, typer.Option(help="Smallest relative slowdown that fails [default: 0.10]; "
                                                    "widens to noise-factor x the A/A CI half-width on noise.")] = None,
    noise_factor: Annotated[float | None, typer.Option(help="How far measured A/A noise widens the threshold "
                                                       "[default: 1.0].")] = None,
    alpha: Annotated[float | None, typer.Option(help="Significance level [default: 0.01].")] = None,
    accuracy_budget: Annotated[float | None, typer.Option(help="Relative NME increase that fails "
                                                          "[default: 0.02].")] = None,
    slice_budget: Annotated[float | None, typer.Option(help="Relative NME increase that fails any robustness "
                                                       "slice (profile faces, occlusion, low light...: README, "
                                                       "'Robustness slices') [default: 0.05].")] = None,
    slice_min_images: Annotated[int | None, typer.Option(min=1, help="Slices with fewer images are reported, "
                                                         "not judged [default: 30].")] = None,
    runtime: Annotated[str | None, typer.Option(help="Runtime; default: the one the file type implies.")] = None,
    threads: Annotated[int, typer.Option(min=1, help="Threads for both sides.")] = 1,
    input_shape: Annotated[str | None, typer.Option(help="N,C,H,W fed to both sides [default: the model's own "
                                                    "input, dynamic dimensions as 1].")] = None,
    data: Annotated[str, typer.Option(help="Labeled data for the accuracy gate: any --data form "
                                             "(README, 'Data').")] = "synth:test",
    eval_images: Annotated[int, typer.Option(min=0, help="Images for the accuracy gate (0: latency only).")] = 200,
    out: Annotated[Path | None, typer.Option(help="Also write the decision as JSON here.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for the block order.")] = 0,
    host: Annotated[list[str] | None, typer.Option(
        help="Gate on user@host over ssh; more than once: a fleet, every host at once, each judged on its own "
             "(then --stored and --update-baseline name a folder with one <host>.json per host).")] = None,
    ssh_config: Annotated[Path | None, typer.Option(help="ssh config file for --host (ssh -F).")] = None,
    remote_python: Annotated[str, typer.Option(help="Python on the hosts (needs numpy and the runtime).")]
    = "python3",
) -> None:
    """Fail CI when a candidate is slower or less accurate than a baseline, with statistics that hold on noise.

    Exit codes: 0 pass, 1 regression, 3 inconclusive (noisy machine, too few blocks, accuracy not measured or
    fingerprint mismatch), 2 bad input. Noise never turns a measured slowdown into a pass: a ratio whose 95% CI
    clears the threshold with p < alpha fails however noisy the A/A arm. Otherwise a regression needs all three:
    slowdown over the (noise-widened) threshold, a one-sided p < alpha (Wilcoxon signed-rank on per-block log
    ratios; Mann-Whitney against a stored baseline), and the 95% CI of the ratio clearing half the threshold.
    Options given here beat the budgets stored in a baseline file.
    """
    import tempfile

    from .bench import gate as g
    from .bench import gate_stored
    from .bench.decision import EXIT_CODES

    given = {"threshold": threshold, "noise_factor": noise_factor, "alpha": alpha, "accuracy_budget": accuracy_budget,
             "slice_budget": slice_budget, "slice_min_images": slice_min_images}
    def status(text: str) -> None:
        console.print(text, end="\r", highlight=False)

    opts = g.GateOptions(blocks=blocks, runtime=runtime, threads=threads, data=data, eval_images=eval_images,
                         input_shape=_shape(input_shape),
                         overrides={k: v for k, v in given.items() if v is not None}, seed=seed,
                         progress=status if console.is_terminal else None)
    opts.rule()  # a bad value stops here, before anything is measured
    with tempfile.TemporaryDirectory(prefix="edgekit-gate-") as tmp:
        cand = g.resolve_artifact(str(candidate), Path(tmp), role="candidate")
        if host:
            _gate_hosts(host, cand, baseline, stored, update_baseline, target, opts, ssh_config, remote_python,
                        out, Path(tmp))
            return
        if update_baseline:
            doc = gate_stored.update_baseline(update_baseline, cand, target, opts, Path(tmp))
            console.print(f"wrote {update_baseline}: {len(doc['block_p50_ms'])} blocks, median p50 "
                          f"{sorted(doc['block_p50_ms'])[len(doc['block_p50_ms']) // 2]:.3f} ms", highlight=False)
            return
        if (baseline is None) == (stored is None):
            raise EdgekitError("give exactly one of --baseline (same-run A/B) or --stored (a stored baseline JSON)")
        if stored:
            report = gate_stored.stored(stored, cand, opts, Path(tmp))
        else:
            report = g.same_run(g.resolve_artifact(baseline, Path(tmp), role="baseline"), cand, opts, Path(tmp))
    g.write_report(report, out)
    out_console.print(g.summary_markdown(report), markup=False, highlight=False)
    raise typer.Exit(EXIT_CODES[report["verdict"]])


def _gate_hosts(hosts: list[str], cand: Path, baseline: str | None, stored: Path | None, update: Path | None,
                target: str, opts, ssh_config: Path | None, remote_python: str, out: Path | None, tmp: Path) -> None:
    """The gate on every host at once: each host against its own baseline; exits like the single gate."""
    from .bench import gate as g
    from .bench import gate_fleet, gate_stored
    from .bench.decision import EXIT_CODES

    if len(set(hosts)) != len(hosts):
        raise EdgekitError("--host: each host once")
    if update:
        docs = gate_fleet.per_host(hosts, opts, ssh_config, remote_python, lambda h, o, w: gate_stored.update_baseline(
            gate_fleet.baseline_file(update, h), cand, target, o, w), tmp)
        for h, doc in docs.items():
            console.print(f"wrote {gate_fleet.baseline_file(update, h)}: {len(doc['block_p50_ms'])} blocks measured on "
                          f"{h}", highlight=False)
        return
    if (baseline is None) == (stored is None):
        raise EdgekitError("give exactly one of --baseline (same-run A/B on each host) or --stored (a folder of "
                           "<host>.json baselines)")
    if stored:
        missing = [h for h in hosts if not gate_fleet.baseline_file(stored, h).is_file()]
        if missing:
            raise EdgekitError(f"no stored baseline for {', '.join(missing)}; create them with `edgekit gate "
                               f"--update-baseline {stored} --host ...`", path=stored)
        reports = gate_fleet.per_host(hosts, opts, ssh_config, remote_python, lambda h, o, w: gate_stored.stored(
            gate_fleet.baseline_file(stored, h), cand, o, w), tmp)
    else:
        base = g.resolve_artifact(baseline, tmp, role="baseline")
        reports = gate_fleet.per_host(hosts, opts, ssh_config, remote_python,
                                      lambda h, o, w: g.same_run(base, cand, o, w), tmp)
    report = gate_fleet.fleet_report(reports)
    g.write_report(report, out)
    out_console.print(gate_fleet.fleet_markdown(report, g.summary_markdown), markup=False, highlight=False)
    raise typer.Exit(EXIT_CODES[report["verdict"]])


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    try:
        shape = tuple(int(v) for v in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 4 or min(shape) < 1:
        raise EdgekitError(f"--input-shape {text!r}: expected four positive integers N,C,H,W (e.g. 1,3,128,128)")
    return shape
