"""``clusterlens texture`` and ``clusterlens channels``: compute and inspect textures."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import typer
from rich.table import Table

from clusterlens.cli._common import (
    DEFAULT_MAX_SIDE,
    MaxSideOption,
    console,
    load_bounded,
    parse_point,
    print_json,
    print_notes,
    user_errors,
)
from clusterlens.texture import (
    PRESETS,
    MipPyramid,
    generate_texture,
    list_channels,
    list_groups,
)
from clusterlens.texture.registry import resolve_channels
from clusterlens.viz import save_texture_sheet


def write_texture_outputs(
    image_path: Path | None,
    image: Any,
    preset: str,
    out: Path,
    name: str,
    min_side: int = 8,
    fixation: tuple[float, float] | None = None,
) -> dict[str, Any]:
    """Compute a texture and its pyramid; write the contact sheet PNG and the .npz."""
    started = time.perf_counter()
    channels = PRESETS[preset] if preset in PRESETS else [c.strip() for c in preset.split(",")]
    texture = generate_texture(image, channels, fixation=fixation)
    pyramid = MipPyramid.from_texture(texture, min_side=min_side)
    elapsed = time.perf_counter() - started
    out.mkdir(parents=True, exist_ok=True)
    sheet = save_texture_sheet(pyramid, out / f"{name}_texture.png", title=f"{name} · {preset}")
    arrays = {f"level_{k}": level.numpy() for k, level in enumerate(pyramid.levels)}
    sources = {k: v for k, v in texture.meta.items() if isinstance(v, str)}
    npz = out / f"{name}_texture.npz"
    np.savez_compressed(
        npz, channels=np.array(texture.channels), meta=json.dumps(sources), **arrays
    )
    return {
        "image": str(image_path) if image_path else name,
        "preset": preset,
        "size": [texture.height, texture.width],
        "channels": list(texture.channels),
        "levels": [list(level.shape[1:]) for level in pyramid.levels],
        "seconds": round(elapsed, 3),
        "sources": sources,
        "wrote": [str(sheet), str(npz)],
    }


def texture_command(
    image: Path = typer.Argument(..., help="Image file (any format Pillow reads)."),
    preset: str = typer.Option(
        "mvp13",
        "--preset",
        "-p",
        help="mvp13 | full40, or a comma-separated list of channel / group names.",
    ),
    out: Path = typer.Option(Path("outputs/texture"), "--out", "-o", help="Output folder."),
    min_side: int = typer.Option(8, help="Smallest pyramid side, in pixels."),
    max_side: MaxSideOption = DEFAULT_MAX_SIDE,
    fixation: str | None = typer.Option(None, help="Fixation point 'X,Y' (0..1) for eccentricity."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Compute texture channels and their mip pyramid; write a contact sheet PNG and an .npz."""
    if preset not in PRESETS:
        resolve_channels(c.strip() for c in preset.split(","))  # fail early, clearly
    rgb, note = load_bounded(image, max_side)
    summary = write_texture_outputs(
        image, rgb, preset, out, image.stem, min_side, parse_point(fixation, "--fixation")
    )
    summary["notes"] = [note] if note else []
    print_notes(summary["notes"])  # stderr: also seen when --json feeds a script
    if as_json:
        print_json(summary)
        return
    console.print(
        f"{image.name}: {len(summary['channels'])} channels, {len(summary['levels'])} levels "
        f"in {summary['seconds'] * 1000:.0f} ms"
    )
    for path in summary["wrote"]:
        console.print(f"  wrote {path}")


def channels_command() -> None:
    """List every texture channel group, its meaning and its slots in each preset."""
    descriptions = list_channels()
    table = Table("group", "channels", "description", *(f"{p} slots" for p in PRESETS))
    for group, names in list_groups().items():
        slots = [_slots([PRESETS[p].index(n) for n in names if n in PRESETS[p]]) for p in PRESETS]
        table.add_row(group, _short_names(names), descriptions[names[0]], *slots)
    console.print(table)


def _slots(indices: list[int]) -> str:
    """'18-33' for a consecutive run, else the indices one by one."""
    if len(indices) > 2 and indices == list(range(indices[0], indices[-1] + 1)):
        return f"{indices[0]}-{indices[-1]}"
    return " ".join(map(str, indices))


def _short_names(names: tuple[str, ...]) -> str:
    return f"{names[0]} … {names[-1]}" if len(names) > 4 else ", ".join(names)


def register(app: typer.Typer) -> None:
    app.command("texture")(user_errors(texture_command))
    app.command("channels")(channels_command)
