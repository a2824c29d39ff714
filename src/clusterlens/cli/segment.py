"""``clusterlens segment`` and ``clusterlens seg-bench``: open-vocabulary segmentation (MHQR).

``segment IMAGE --classes road,car,sky --out DIR`` writes ``DIR/<stem>_segment.png``
(the image with the prompts, and the colour label map with a legend),
``DIR/<stem>_labels.png`` (the class index per pixel) and ``DIR/<stem>_segment.json``
(classes, stages, prompts, masks, time per stage).

``seg-bench --dataset camvid --split val --num-samples 20`` scores the dense predictor
alone and the configured pipeline: mIoU, boundary F1, small-object IoU, s/image.
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

from clusterlens.cli._common import (
    MaxSideOption,
    bench_progress,
    console,
    load_bounded,
    print_notes,
    user_errors,
    write_rows,
)
from clusterlens.evaluate.seg_datasets import DATASETS, load_seg_dataset
from clusterlens.segment import MHQRConfig, MHQRSegmenter, load_dense_predictor, load_proposer
from clusterlens.segment.evaluation import BOUNDARY_TOLERANCE, evaluate_segmenter
from clusterlens.viz import DPI, panel_height

ModelOption = Annotated[
    str, typer.Option("--model", help="Dense model: offline:camvid, open_clip:<spec>, hf:<spec>.")
]
ProposerOption = Annotated[
    str, typer.Option("--proposer", help="offline, sam:/path/sam_vit_b.pth or sam2:/path.pt.")
]
NoDynamic = Annotated[
    bool, typer.Option("--no-dynamic-queries", help="Blind grid of prompts instead.")
]
NoHierarchical = Annotated[
    bool, typer.Option("--no-hierarchical", help="Skip coarse-to-fine refinement.")
]
NoMerging = Annotated[bool, typer.Option("--no-merging", help="Paint masks, no semantic merger.")]
#: MHQR holds full-size masks per prompt (up to 200), so its memory grows with prompts x
#: pixels: on a 12000x9000 photo the command peaked at 3.4 GB at --max-side 1024, 2.2 GB at
#: 768, 1.7 GB at 640 and 1.3 GB at 512 (139-199 prompts). 512 keeps the worst case (200
#: prompts) under 2 GB and is about the 480x360 the offline model was trained on.
SEGMENT_MAX_SIDE = 512


def register(app: typer.Typer) -> None:
    """Add the ``segment`` and ``seg-bench`` commands to ``app``."""
    app.command("segment")(segment)
    app.command("seg-bench")(seg_bench)


def _config(no_dynamic: bool, no_hierarchical: bool, no_merging: bool) -> MHQRConfig:
    return MHQRConfig(
        dynamic_queries=not no_dynamic, hierarchical=not no_hierarchical, merging=not no_merging
    )


def _parse_classes(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise ValueError(f"--classes needs comma-separated class names, got {text!r}")
    return names


def _palette(count: int) -> np.ndarray:
    from matplotlib import colormaps

    # tab10 keeps up to 10 classes far apart; tab20 (paired shades) beyond that
    colours = colormaps["tab10" if count <= 10 else "tab20"](np.arange(count) % 20)[:, :3]
    return (colours * 255).round().astype(np.uint8)


@user_errors
def segment(
    image: Annotated[Path, typer.Argument(help="Image file to segment.")],
    classes: Annotated[str, typer.Option("--classes", help="Comma-separated class names.")],
    out: Annotated[Path, typer.Option("--out", help="Folder for the PNGs and JSON.")],
    model: ModelOption = "offline:camvid",
    proposer: ProposerOption = "offline",
    background: Annotated[
        bool, typer.Option("--background", help="Add a background class.")
    ] = False,
    no_dynamic_queries: NoDynamic = False,
    no_hierarchical: NoHierarchical = False,
    no_merging: NoMerging = False,
    max_side: MaxSideOption = SEGMENT_MAX_SIDE,
) -> None:
    """Segment IMAGE into the given classes with MHQR; write the label map, a picture, JSON."""
    names = _parse_classes(classes)
    rgb, note = load_bounded(image, max_side)
    print_notes([note] if note else [])
    config = _config(no_dynamic_queries, no_hierarchical, no_merging)
    segmenter = MHQRSegmenter(
        load_dense_predictor(model, background=background), load_proposer(proposer), config
    )
    result = segmenter.segment(rgb, names)
    meta = {
        "image": str(image),
        "model": model,
        "proposer": proposer,
        "stages": config.describe(),
        "size": list(rgb.shape[:2]),  # the label map's size: the image's after --max-side
        "notes": [note] if note else [],
    }
    payload, written = write_segmentation(rgb, result, image.stem, out, meta)
    console.print(
        f"{len(payload['queries'])} prompts, {len(payload['masks'])} masks "
        f"({config.describe()}) in {sum(result.seconds.values()):.2f} s -> "
        + ", ".join(str(path) for path in written)
    )


def write_segmentation(
    rgb: np.ndarray, result, stem: str, out: Path, meta: dict
) -> tuple[dict, list[Path]]:
    """Write ``<stem>_labels.png``, ``<stem>_segment.png`` and ``<stem>_segment.json``.

    Returns the JSON payload and the three paths written.
    """
    out.mkdir(parents=True, exist_ok=True)
    labels_path = out / f"{stem}_labels.png"
    Image.fromarray(
        result.labels.astype(np.uint8 if len(result.class_names) < 256 else np.uint16)
    ).save(labels_path)
    picture = out / f"{stem}_segment.png"
    _draw(rgb, result, picture)
    shares = (
        np.bincount(result.labels.ravel(), minlength=len(result.class_names)) / result.labels.size
    )
    payload = {
        **meta,
        "classes": list(result.class_names),
        "class_shares": {
            n: round(float(s), 4) for n, s in zip(result.class_names, shares, strict=True)
        },
        "query_meta": result.queries.meta if result.queries is not None else {},
        "queries": result.queries.to_json(result.class_names) if result.queries is not None else [],
        "masks": result.masks_json(),
        "seconds": {stage: round(value, 4) for stage, value in result.seconds.items()},
    }
    json_path = out / f"{stem}_segment.json"
    json_path.write_text(json.dumps(payload, indent=2))
    return payload, [labels_path, picture, json_path]


def _draw(rgb: np.ndarray, result, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    colours = _palette(len(result.class_names))
    height, width = result.labels.shape
    size = (12, panel_height(6, height / width) + 1.2)  # bounded for any aspect
    figure, axes = plt.subplots(1, 2, figsize=size, dpi=DPI)
    axes[0].imshow(rgb)
    if result.queries is not None and len(result.queries):
        points = result.queries.points
        axes[0].scatter(
            points[:, 0], points[:, 1], s=14, c=colours[result.queries.class_indices] / 255,
            edgecolors="white", linewidths=0.6,
        )  # fmt: skip
    axes[0].set_title(f"image and {0 if result.queries is None else len(result.queries)} prompts")
    axes[1].imshow(colours[result.labels])
    axes[1].set_title("label map")
    for axis in axes:
        axis.axis("off")
    present = np.unique(result.labels)
    handles = [Patch(color=colours[k] / 255, label=result.class_names[k]) for k in present]
    figure.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    figure.savefig(path)
    plt.close(figure)


@user_errors
def seg_bench(
    dataset: Annotated[str, typer.Option("--dataset", help=f"One of {', '.join(DATASETS)}.")],
    root: Annotated[
        Path | None, typer.Option("--root", help="Data set folder (camvid: auto).")
    ] = None,
    split: Annotated[str, typer.Option("--split", help="Split name.")] = "val",
    num_samples: Annotated[
        int | None, typer.Option("--num-samples", help="Use the first N images.")
    ] = None,
    model: ModelOption = "offline:camvid",
    proposer: ProposerOption = "offline",
    dense_only: Annotated[
        bool, typer.Option("--dense-only", help="Score only the dense predictor.")
    ] = False,
    no_dynamic_queries: NoDynamic = False,
    no_hierarchical: NoHierarchical = False,
    no_merging: NoMerging = False,
    tolerance: Annotated[
        float, typer.Option("--tolerance", help="Boundary F1 tolerance (px).")
    ] = BOUNDARY_TOLERANCE,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the rows here.")] = None,
) -> None:
    """Score the dense predictor and the MHQR pipeline on a labelled data set."""
    data = load_seg_dataset(dataset, root, split).subset(num_samples)
    config = _config(no_dynamic_queries, no_hierarchical, no_merging)
    segmenter = MHQRSegmenter(load_dense_predictor(model), load_proposer(proposer), config)
    runs = [None] if dense_only else [None, config]
    rows = []
    with bench_progress(console) as progress:
        for run in runs:
            task = progress.add_task("dense" if run is None else run.describe(), total=len(data))
            rows.append(
                evaluate_segmenter(
                    segmenter,
                    data,
                    run,
                    tolerance,
                    on_image=lambda _, task=task: progress.advance(task),
                )
            )
    Console().print(_table(rows, f"{len(data)} {dataset} {split} images, {model} + {proposer}"))
    write_rows(rows, json_path, console)


def _table(rows: list[dict], title: str) -> Table:
    table = Table(title=title)
    for column in ("config", "mIoU", "boundary F1", "small-object IoU", "s/image"):
        table.add_column(column, justify="left" if column == "config" else "right")
    for row in rows:
        table.add_row(
            row["config"],
            f"{100 * row['miou']:.2f}",
            f"{100 * row['boundary_f1']:.2f}",
            f"{100 * row['small_object_iou']:.2f}",
            f"{row['seconds_per_image']:.2f}",
        )
    return table
