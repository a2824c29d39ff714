"""``clusterlens demo``: the most complete path through what exists, on a bundled image.

1. texture channels and mip pyramid of the sample (contact sheet + .npz);
2. query-aware selection on the same image with two different queries, so the
   allocation can be seen to follow the question;
3. open-vocabulary segmentation (MHQR, offline model and offline region proposer)
   of the same image into a few of the offline model's classes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from clusterlens.cli._common import (
    MaxSideOption,
    console,
    load_bounded,
    print_json,
    print_notes,
    user_errors,
)
from clusterlens.cli.segment import SEGMENT_MAX_SIDE
from clusterlens.cli.texture import write_texture_outputs

SAMPLE = "camera"  # scikit-image's "cameraman" (512x512, outdoors: sky, ground, a person)
QUERIES = ("the sky", "the road")
STRATEGY = "cluster-cascade"
BUDGET = 144
SEGMENT_CLASSES = ("sky", "road", "building", "pedestrian")


def sample_image() -> Any:
    """The bundled sample, shipped inside scikit-image (a core dependency)."""
    from skimage import data

    return getattr(data, SAMPLE)()


def select_outputs(image: Any, name: str, query: str, out: Path) -> dict[str, Any]:
    """Run ``select`` for one query and write its picture and JSON."""
    from clusterlens.pipeline import select_patches  # local: loads models only when needed
    from clusterlens.viz import save_allocation_picture

    result = select_patches(image, query, STRATEGY, BUDGET)
    stem = f"{name}_select_{query.replace(' ', '_')}"
    picture = save_allocation_picture(
        result.image, result.allocation, result.relevance, out / f"{stem}.png"
    )
    json_path = result.allocation.save_json(out / f"{stem}.json")
    accounting = result.allocation.to_json()["accounting"]
    return {
        "query": query,
        "notes": result.notes,
        "accounting": accounting,
        "match": result.allocation.meta["query_match"],
        "wrote": [str(picture), str(json_path)],
    }


def segment_outputs(image: Any, name: str, out: Path) -> dict[str, Any]:
    """Segment the image with the offline MHQR pipeline; write its label map, picture, JSON."""
    from clusterlens.cli.segment import write_segmentation
    from clusterlens.segment import MHQRSegmenter

    segmenter = MHQRSegmenter.offline()
    result = segmenter.segment(image, list(SEGMENT_CLASSES))
    meta = {"image": name, "model": "offline:camvid", "proposer": "offline"}
    payload, written = write_segmentation(image, result, name, out, meta)
    return {
        "classes": payload["class_shares"],
        "prompts": len(payload["queries"]),
        "seconds": round(sum(result.seconds.values()), 2),
        "wrote": [str(path) for path in written],
    }


def demo_command(
    out: Path = typer.Option(Path("outputs/demo"), "--out", "-o", help="Output folder."),
    image: Path | None = typer.Option(None, help="Use this image instead of the bundled sample."),
    # segment's bound, because the segmentation stage runs on the same pixels
    max_side: MaxSideOption = SEGMENT_MAX_SIDE,
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary on stdout."),
) -> None:
    """Run the main job on the bundled sample image and write its pictures."""
    name = image.stem if image else SAMPLE
    pixels, note = load_bounded(image or sample_image(), max_side, None if image else SAMPLE)
    notes = [note] if note else []
    print_notes(notes)  # every stage below works on the reduced image
    texture = write_texture_outputs(image, pixels, "mvp13", out, f"{name}_mvp13")
    from clusterlens.context import ImageContext  # local: loads models only when needed

    context = ImageContext.of(pixels)  # the second query reuses the first's model pass
    selections = [select_outputs(context, name, query, out) for query in QUERIES]
    segmentation = segment_outputs(pixels, name, out)
    if as_json:
        print_json(
            {"notes": notes, "texture": texture, "select": selections, "segment": segmentation}
        )
        return
    console.print(
        f"[bold]texture[/]: {len(texture['channels'])} channels, {len(texture['levels'])} "
        f"pyramid levels in {texture['seconds'] * 1000:.0f} ms"
    )
    for path in texture["wrote"]:
        console.print(f"  wrote {path}")
    for selection in selections:
        accounting = selection["accounting"]
        console.print(
            f"[bold]select[/] “{selection['query']}” ({STRATEGY}): kept "
            f"{accounting['patches_kept']}/{accounting['finest_cells']} patches in "
            f"{accounting['total_ms']:.0f} ms (model {accounting['encoder_gflops']:.2f} GFLOPs"
            f"{', reused ' + ', '.join(accounting['cached']) if accounting['cached'] else ''}); "
            f"matched classes {selection['match']['classes']}"
        )
        for note in selection["notes"]:
            console.print(f"  note: {note}")
        for path in selection["wrote"]:
            console.print(f"  wrote {path}")
    shares = ", ".join(f"{k} {v:.0%}" for k, v in segmentation["classes"].items())
    console.print(
        f"[bold]segment[/] (MHQR, offline): {segmentation['prompts']} prompts in "
        f"{segmentation['seconds']} s; {shares}"
    )
    for path in segmentation["wrote"]:
        console.print(f"  wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("demo")(user_errors(demo_command))
