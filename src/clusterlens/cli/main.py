"""Entry point of the ``clusterlens`` command: builds the Typer app from command modules."""

from __future__ import annotations

import typer

from clusterlens import __version__
from clusterlens.cli import app as gui
from clusterlens.cli import (
    ask,
    catalog,
    clusters,
    convert_yolo,
    demo,
    flow,
    segment,
    select_command,
    texture,
    train,
    train_detector,
    vlm_eval,
)

app = typer.Typer(
    name="clusterlens",
    help="Cluster-first computer vision: group first, then spend compute where it matters.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _show_version(value: bool) -> None:
    if value:
        typer.echo(f"clusterlens {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False,
        "--version",
        callback=_show_version,
        is_eager=True,
        help="Print the version and exit.",
    ),
) -> None:
    """Cluster-first computer vision."""


# gui: cli/app.py under another name (`app` is the Typer app)
for module in (demo, texture, clusters, select_command, segment, catalog, flow, ask, train, gui):
    module.register(app)
vlm_eval.register(app)
train_detector.register(app)
convert_yolo.register(app)


def main() -> None:
    app()
