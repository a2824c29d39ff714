"""``clusterlens convert-yolo``: an ultralytics checkpoint into the safe, tensors-only format.

Converting rebuilds the network objects the source pickles (torch.nn / ultralytics.nn
module classes only, with ``weights_only=True``), so the command
refuses unless ``--trust-source`` says the user knows where the file came from.
"""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape

from clusterlens.cli._common import console, print_json, user_errors


def convert_yolo_command(
    source: Path = typer.Argument(..., help="The ultralytics checkpoint (e.g. best.pt)."),
    destination: Path = typer.Argument(..., help="The safe checkpoint to write."),
    trust_source: bool = typer.Option(
        False,
        "--trust-source",
        help="Required: SOURCE's network objects are rebuilt; only for a trusted file.",
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite DESTINATION."),
    half: bool = typer.Option(
        True, "--half/--float32", help="Store fp16 (ultralytics' own precision) or fp32 tensors."
    ),
    as_json: bool = typer.Option(False, "--json", help="Print what was written as JSON."),
) -> None:
    """Convert an ultralytics YOLO checkpoint for 'yolo:DESTINATION' (weights_only loading)."""
    from clusterlens.models.yolo_checkpoint import (
        convert_ultralytics_checkpoint,
        read_yolo_checkpoint,
    )

    try:
        written = convert_ultralytics_checkpoint(
            source, destination, trust_source=trust_source, force=force, half=half
        )
    except (PermissionError, FileExistsError) as err:
        raise ValueError(str(err)) from err  # one line and exit 2, like other input errors
    checkpoint = read_yolo_checkpoint(written)
    summary = {
        "destination": str(written),
        "bytes": written.stat().st_size,
        "task": checkpoint["task"],
        "names": checkpoint["names"],
        "model": f"yolo:{written}",
    }
    if as_json:
        print_json(summary)
        return
    console.print(
        f"[bold]converted[/] {escape(str(source))} -> {escape(str(written))} "
        f"({summary['bytes'] / 1e6:.2f} MB, {checkpoint['task']}, "
        f"{len(checkpoint['names'])} classes); load it as {escape(summary['model'])}",
        soft_wrap=True,
    )


def register(app: typer.Typer) -> None:
    """Add the ``convert-yolo`` command to ``app``."""
    app.command("convert-yolo")(user_errors(convert_yolo_command))
