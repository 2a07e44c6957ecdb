"""`edgekit predict`, kept apart from cli.py (which registers it) so the command module stays short."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console


def predict(
    model: Annotated[str, typer.Option("--weights", "--model", help="zoo:NAME, a .safetensors checkpoint, or an "
                                       "exported artifact (.onnx, .tflite, .engine) run through its own runtime.")],
    image: Annotated[Path, typer.Option(help="Photo (JPEG, PNG or BMP).")],
    out: Annotated[Path, typer.Option(help="Overlay PNG to write.")] = Path("overlay.png"),
    box: Annotated[str | None, typer.Option(help="Face box x0,y0,x1,y1 in pixels; default: the largest face "
                                            "an LBP cascade finds (shipped in scikit-image, offline).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Also print the box, landmarks and states as JSON.")]
    = False,
) -> None:
    """Draw a model's landmarks and part states on a photo.

    The crop around the face box is the one the data readers cut around a landmark box, so the model sees the
    face framed as in training. Exit codes: 0 drawn; 2 bad input (unreadable image, no face found without
    --box, unknown model).
    """
    from .predict import draw, parse_box
    from .predict import predict as run

    pred = run(model, image, parse_box(box) if box else None)
    draw(image, pred, out)
    states = ", ".join(f"{k.replace('_open', '')} {'open' if p >= 0.5 else 'closed'} ({p:.2f})"
                       for k, p in pred.states.items())
    Console(stderr=True).print(f"{len(pred.landmarks)} landmarks, face box {'detected' if pred.detected else 'given'}"
                               f"{'; ' + states if states else ''} -> {out}", highlight=False)
    if as_json:
        sys.stdout.write(json.dumps(pred.to_json()) + "\n")
