"""``clusterlens demo``: the most complete path through what exists, on a bundled image."""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.cli._common import console, print_json, user_errors
from clusterlens.cli.texture import write_texture_outputs


def sample_image():
    """The bundled sample: scikit-image's astronaut (NASA, public domain), 512x512."""
    from skimage.data import astronaut

    return astronaut()


def demo_command(
    out: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Output folder."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Run the main job on the bundled sample image and write its pictures."""
    image = sample_image()
    results = [
        write_texture_outputs(None, image, preset, out, f"astronaut_{preset}")
        for preset in ("mvp13", "full40")
    ]
    if as_json:
        print_json({"steps": results})
        return
    for result in results:
        console.print(
            f"[bold]{result['preset']}[/]: {len(result['channels'])} texture channels, "
            f"{len(result['levels'])} pyramid levels in {result['seconds'] * 1000:.0f} ms"
        )
        for name, source in result["sources"].items():
            console.print(f"  {name}: {source}")
        for path in result["wrote"]:
            console.print(f"  wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("demo")(user_errors(demo_command))
