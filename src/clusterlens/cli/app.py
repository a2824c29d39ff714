"""``clusterlens app``: the browser app (Gradio), bound to localhost by default."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.cli._common import user_errors


def app_command(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (localhost only by default)."),
    port: int = typer.Option(7860, help="Port to listen on."),
    images: Path | None = typer.Option(
        None, help="Offer the image files directly under this folder in the image picker."
    ),
    catalog: Path | None = typer.Option(
        None, help="Browse this catalog (SQLite, opened read-only) in the catalog tab."
    ),
) -> None:
    """Open the interactive microscope: allocation, regions, segmentation and a catalog."""
    try:
        from clusterlens.app.ui import launch  # local: gradio is the optional [app] extra
    except ImportError as error:
        raise ValueError(
            f"the app needs gradio ({error}); install it with: pip install 'clusterlens[app]'"
        ) from error
    launch(
        host=host,
        port=port,
        images=str(images) if images else None,
        catalog=str(catalog) if catalog else None,
    )


def register(app: typer.Typer) -> None:
    app.command("app")(user_errors(app_command))
