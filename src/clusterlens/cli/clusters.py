"""``clusterlens clusters`` and ``clusterlens clusters-bench``: region clustering from the shell.

``clusters IMAGE --method fast --segments 300 --out DIR`` writes
``DIR/<stem>_clusters.png`` (region boundaries drawn over the image) and
``DIR/<stem>_clusters.json`` (method, timing, quality summary and the per-cluster
table).

``clusters-bench --split val --methods slic,fast --segments 100,300,600`` scores
methods on BSDS500 and prints one row per method and segment count.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import numpy as np
import typer
from PIL import Image
from rich.console import Console
from rich.table import Table
from skimage.segmentation import mark_boundaries

from clusterlens.cli._common import (
    DEFAULT_MAX_SIDE,
    MaxSideOption,
    bench_progress,
    load_bounded,
    write_rows,
)
from clusterlens.evaluate.bsds import bsds_ids, iter_bsds
from clusterlens.evaluate.superpixel import variance_summary
from clusterlens.regions import cluster_image, list_methods
from clusterlens.regions.benchmark import ROW_KEYS, benchmark_methods

BENCH_COLUMNS = ROW_KEYS[: ROW_KEYS.index("ms_per_image") + 1]  # the table columns


def register(app: typer.Typer) -> None:
    """Add the ``clusters`` and ``clusters-bench`` commands to ``app``."""
    app.command("clusters")(clusters)
    app.command("clusters-bench")(clusters_bench)


def clusters(
    image: Annotated[Path, typer.Argument(help="Image file to cluster.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the overlay PNG and JSON.")],
    method: Annotated[str, typer.Option("--method", help="Region method (see list).")] = "fast",
    segments: Annotated[int, typer.Option("--segments", help="Target number of regions.")] = 300,
    max_side: MaxSideOption = DEFAULT_MAX_SIDE,
) -> None:
    """Cluster IMAGE into regions; write a boundary overlay PNG and JSON statistics."""
    console = Console()
    rgb, note = _load_or_exit(image, max_side)
    if note:
        console.print(f"note: {note}", soft_wrap=True, markup=False)
    cmap = _cluster_or_exit(rgb, method, segments)
    out.mkdir(parents=True, exist_ok=True)
    overlay_path = out / f"{image.stem}_clusters.png"
    overlay = mark_boundaries(rgb, cmap.labels, color=(1.0, 1.0, 0.0), mode="inner")
    Image.fromarray((np.clip(overlay, 0, 1) * 255).round().astype(np.uint8)).save(overlay_path)
    stats = {
        "image": str(image),
        "method": method,
        "size": list(rgb.shape[:2]),  # the label map's size: the image's after --max-side
        "notes": [note] if note else [],
        "n_segments": cmap.meta["n_segments"],
        "n_clusters": cmap.n_clusters,
        "ms": round(cmap.meta["seconds"] * 1000, 2),
        "summary": variance_summary(cmap.labels, rgb),
        "clusters": cmap.table(),
    }
    json_path = out / f"{image.stem}_clusters.json"
    json_path.write_text(json.dumps(stats, indent=2))
    console.print(
        f"{cmap.n_clusters} clusters with {method} in {stats['ms']:.1f} ms -> "
        f"{overlay_path}, {json_path}"
    )


def clusters_bench(
    data: Annotated[
        Path | None, typer.Option("--data", help="Folder holding bsds500/ (default: auto).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="train, val or test.")] = "val",
    methods: Annotated[
        str, typer.Option("--methods", help="Comma-separated methods.")
    ] = "slic,fast",
    segments: Annotated[
        str, typer.Option("--segments", help="Comma-separated counts.")
    ] = "100,300,600",
    limit: Annotated[int | None, typer.Option("--limit", help="Use the first N images.")] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the rows here.")] = None,
) -> None:
    """Score region methods on BSDS500: boundary recall, UE, ASA, EV, compactness, time."""
    console = Console()
    if not console.is_terminal:  # pipes and logs: keep the eight columns on one line
        console = Console(width=160)
    names = _parse_methods(methods)
    counts = _parse_segments(segments)
    try:
        ids = bsds_ids(split, data)
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="--data/--split") from err
    total = len(ids) if limit is None else min(limit, len(ids))
    with bench_progress(console) as progress:
        task = progress.add_task("clustering", total=total)
        rows = benchmark_methods(
            iter_bsds(split, data, limit), names, counts, lambda _: progress.advance(task)
        )
    rows.sort(key=lambda row: (names.index(row["method"]), row["n_segments"]))
    console.print(_table(rows, f"{total} BSDS500 {split} images"))
    write_rows(rows, json_path, console)


def _table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in BENCH_COLUMNS:
        table.add_column(column, justify="left" if column == "method" else "right")
    for row in rows:
        table.add_row(
            row["method"],
            str(row["n_segments"]),
            *(f"{row[key]:.4f}" for key in BENCH_COLUMNS[2:7]),
            f"{row['ms_per_image']:.1f}",
        )
    return table


def _load_or_exit(path: Path, max_side: int) -> tuple[np.ndarray, str | None]:
    if max_side < 0:
        raise typer.BadParameter(
            f"must be 0 (full size) or a positive side, got {max_side}", param_hint="--max-side"
        )
    try:
        return load_bounded(path, max_side)
    except (FileNotFoundError, ValueError) as err:
        raise typer.BadParameter(str(err), param_hint="IMAGE") from err


def _cluster_or_exit(rgb: np.ndarray, method: str, segments: int):
    if method not in list_methods():
        raise typer.BadParameter(
            f"unknown method {method!r}; available: {', '.join(list_methods())}",
            param_hint="--method",
        )
    try:
        return cluster_image(rgb, method=method, n_segments=segments)
    except ValueError as err:
        raise typer.BadParameter(str(err), param_hint="--segments") from err


def _parse_methods(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    unknown = [name for name in names if name not in list_methods()]
    if not names or unknown:
        raise typer.BadParameter(
            f"unknown method(s) {unknown}; available: {', '.join(list_methods())}",
            param_hint="--methods",
        )
    return names


def _parse_segments(text: str) -> list[int]:
    try:
        counts = [int(value) for value in text.split(",") if value.strip()]
    except ValueError as err:
        raise typer.BadParameter(f"expected comma-separated integers, got {text!r}") from err
    if not counts or min(counts) < 1:
        raise typer.BadParameter(f"segment counts must be positive integers, got {text!r}")
    return counts
