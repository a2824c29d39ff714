"""Helpers shared by the command modules: error reporting and option parsing."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

console = Console(stderr=True)
Command = TypeVar("Command", bound=Callable[..., Any])

#: Longer side images are decoded at by default: a 12000x9000 photo at full size needs
#: several GB of float pixels (and more for textures); 1024 is also select's default.
DEFAULT_MAX_SIDE = 1024
MaxSideOption = Annotated[
    int,
    typer.Option(
        "--max-side",
        help="Decode larger images with this longer side (JPEGs at reduced size); 0: full size.",
    ),
]


def user_errors(command: Command) -> Command:
    """Turn the library's input errors into a one-line message and exit code 2."""

    @wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (ValueError, FileNotFoundError, KeyError, TypeError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else err
            # soft_wrap: one line however long the paths (scripts grep it); escape: a
            # message quoting "[...]" must not be read as console markup and vanish.
            console.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)
            raise typer.Exit(code=2) from err

    return run  # type: ignore[return-value]


def load_bounded(
    image: Any, max_side: int, name: str | None = None
) -> tuple[np.ndarray, str | None]:
    """Load ``image`` (a path, or any input load_image takes) with its longer side at most
    ``max_side`` (0: full size).

    Returns the pixels and, when the image was reduced, a note saying from what size to
    what size, which the command prints (outputs are at the reduced size).
    """
    from clusterlens.image import image_size, load_image

    if max_side < 0:
        raise ValueError(f"--max-side must be 0 (full size) or a positive side, got {max_side}")
    height, width = image_size(image)  # a file's header only: no pixels decoded yet
    rgb = load_image(image, max_side=max_side or None)
    if rgb.shape[:2] == (height, width):
        return rgb, None
    note = (
        f"{name or Path(image).name} is {width}x{height}; processed at "
        f"{rgb.shape[1]}x{rgb.shape[0]} (--max-side {max_side}; --max-side 0 keeps the full size)"
    )
    return rgb, note


def print_notes(notes: list[str]) -> None:
    """Print each note on its own line of stderr (unwrapped, so scripts can grep it)."""
    for note in notes:
        console.print(f"note: {escape(note)}", soft_wrap=True)


def parse_point(text: str | None, option: str) -> tuple[float, float] | None:
    """Parse ``"X,Y"`` into two floats, or explain what is accepted."""
    if text is None:
        return None
    parts = text.split(",")
    try:
        x, y = (float(part) for part in parts)
    except ValueError as err:
        raise ValueError(
            f"{option} must be two numbers 'X,Y' (normalised 0..1), got {text!r}"
        ) from err
    return x, y


def parse_options(pairs: list[str] | None, option: str) -> dict[str, Any]:
    """Parse repeated ``KEY=VALUE`` into a dict; values become int or float when they
    read as one, otherwise stay text."""
    parsed: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip() or not text.strip():
            raise ValueError(
                f"{option} must look like KEY=VALUE (e.g. tolerance=0.01), got {pair!r}"
            )
        parsed[key.strip()] = _number_or_text(text.strip())
    return parsed


def _number_or_text(text: str) -> int | float | str:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            continue
    return text


def print_json(payload: dict[str, Any]) -> None:
    """Machine-readable output on stdout (human output goes to stderr)."""
    typer.echo(json.dumps(payload, indent=2))


def bench_progress(out: Console) -> Progress:
    """The benchmark commands' transient bar: description, bar, done/total, time elapsed."""
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    return Progress(*columns, TimeElapsedColumn(), console=out, transient=True)


def write_rows(rows: list[dict[str, Any]], json_path: Path | None, out: Console) -> None:
    """Write benchmark rows to ``json_path`` as JSON (when given) and say where."""
    if json_path is None:
        return
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(rows, indent=2))
    out.print(f"rows written to {json_path}")
