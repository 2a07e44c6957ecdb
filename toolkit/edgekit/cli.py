"""The `edgekit` command line: a thin typer layer over the Python API."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from .errors import EdgekitError

app = typer.Typer(help="edgekit: turn a facial-feature CNN into small, fast, verified on-device models.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
teacher_app = typer.Typer(help="Train and evaluate teacher models.", no_args_is_help=True)
app.add_typer(teacher_app, name="teacher")
console = Console(stderr=True)


@teacher_app.command("train")
def teacher_train(
    out: Annotated[Path, typer.Option(help="Checkpoint to write (.safetensors).")] = Path("teacher.safetensors"),
    arch: Annotated[str, typer.Option(help="Model family: resnet (teacher) or mobile (student).")] = "resnet",
    width: Annotated[float, typer.Option(help="Width multiplier of the family.")] = 1.0,
    epochs: Annotated[int, typer.Option(help="Maximum epochs.")] = 30,
    steps_per_epoch: Annotated[int, typer.Option(help="Optimizer steps per epoch (fresh faces each epoch).")] = 200,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 64,
    lr: Annotated[float, typer.Option(help="Peak learning rate (AdamW).")] = 2e-3,
    patience: Annotated[int, typer.Option(help="Stop after this many epochs without a better val NME.")] = 6,
    loss: Annotated[str, typer.Option(help="Landmark loss: wing or l1.")] = "wing",
    seed: Annotated[int, typer.Option(help="Seed for weights, augmentation and order.")] = 0,
    half: Annotated[bool, typer.Option(help="Store weights as FP16 (halves the file).")] = False,
    workers: Annotated[int, typer.Option(help="Data-rendering worker processes.")] = 1,
) -> None:
    """Train a model on SynthFaces with AdamW, warm-up + cosine LR and early stopping on validation NME."""
    from .models.checkpoint import save_checkpoint
    from .train.loop import FitConfig
    from .train.teacher import TeacherTrainConfig, train_teacher

    if loss not in ("wing", "l1"):
        raise EdgekitError(f"--loss must be wing or l1, got {loss!r}")
    cfg = TeacherTrainConfig(
        arch=arch, arch_kwargs={"width": width}, batch_size=batch_size, landmark_loss=loss, workers=workers,
        fit=FitConfig(epochs=epochs, steps_per_epoch=steps_per_epoch, lr=lr, patience=patience, seed=seed),
    )
    model, meta, result = train_teacher(cfg)
    save_checkpoint(out, model, meta, half=half)
    t = meta.metrics["synthfaces_test"]
    console.print(f"wrote {out}: test NME {100 * t['nme']:.2f}%, FR@10 {100 * t['failure_rate']:.2f}%, "
                  f"state acc {100 * t['state_accuracy']:.2f}% (best epoch {result.best_epoch}, "
                  f"{result.wall_s / 60:.1f} min)")


def main() -> None:
    try:
        app()
    except EdgekitError as exc:
        console.print(f"[red]error:[/red] {exc}", highlight=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        console.print("interrupted")
        sys.exit(130)


if __name__ == "__main__":
    main()
