"""``clusterlens select``: which patches of an image matter for a question.

(Not named ``select.py``: that would shadow the standard library's ``select`` module
whenever this folder is on ``sys.path``.)
"""

from __future__ import annotations

from pathlib import Path

import typer

from clusterlens.allocate import list_strategies
from clusterlens.cli._common import (
    DEFAULT_MAX_SIDE,
    MaxSideOption,
    console,
    parse_options,
    parse_point,
    print_notes,
    user_errors,
)
from clusterlens.context import ImageContext
from clusterlens.pipeline import select_patches, shown
from clusterlens.video.frames import is_video_input
from clusterlens.viz import save_allocation_picture


def select_command(
    image: Path = typer.Argument(
        ..., help="Image file, or a video file / folder of frames (see docs/video.md)."
    ),
    query: list[str] | None = typer.Option(
        None,
        "--query",
        "-q",
        help="What to look for ('' = no query). Repeat it to ask several questions of one "
        "image: the query-free work (decoding, model passes, ways, clusters) is done once.",
    ),
    strategy: str = typer.Option(
        "cluster-cascade", "--strategy", "-s", help=f"One of: {', '.join(list_strategies())}."
    ),
    budget: int = typer.Option(144, "--budget", "-b", help="Patches to keep."),
    model: str | None = typer.Option(
        None,
        help="Query model: offline:camvid (default), or open vocabulary with a CLIP: "
        "open_clip:ARCH/TAG, open_clip:ARCH//weights.bin, hf:<CLIP or SigLIP folder or id>.",
    ),
    grid: int = typer.Option(32, help="Grid cells per side (32 -> 1024 patches)."),
    gaze: str | None = typer.Option(None, help="Gaze point 'X,Y' (0..1) for foveated."),
    token_budget: int | None = typer.Option(
        None, help="Total tokens; budgets then vary with relevance in 64..400 per patch."
    ),
    balancer: str = typer.Option(
        "adaptive", help="adaptive (weights picked per image, trained) | fixed (0.1/0.1/0.8)."
    ),
    min_match: float | None = typer.Option(
        None,
        "--min-match",
        help="Matcher threshold for this run (default: the model's, 0.45 for offline:camvid; "
        "see benchmarks/matcher.py).",
    ),
    seed: int = typer.Option(0, help="Seed for the random strategy."),
    option: list[str] | None = typer.Option(
        None,
        "--option",
        help="Strategy option KEY=VALUE, repeatable (e.g. tolerance=0.01 for bound-cascade, "
        "oversample=3); see docs/allocate.md.",
    ),
    max_side: MaxSideOption = DEFAULT_MAX_SIDE,
    out: Path = typer.Option(Path("outputs/select"), "--out", "-o", help="Output folder."),
    json_file: Path | None = typer.Option(
        None, "--json", help="Also write the allocation JSON here."
    ),
) -> None:
    """Choose the patches of IMAGE that matter for --query; write a picture and JSON."""
    queries = query or [""]
    if max_side < 0:
        raise ValueError(f"--max-side must be 0 (full size) or a positive side, got {max_side}")
    if is_video_input(image):  # a clip: --budget is tokens per frame on average
        from clusterlens.cli.select_video import run_select_video

        return run_select_video(
            image, queries, strategy, budget, model, grid, max_side, option, out, json_file
        )
    context = ImageContext.of(image, max_side or None)
    (height, width), processed = context.original_size, context.rgb.shape[:2]
    if processed != (height, width):
        print_notes(
            [
                f"{image.name} is {width}x{height}; processed at {processed[1]}x{processed[0]} "
                f"(--max-side {max_side}; --max-side 0 keeps the full size); boxes are in "
                "the original's pixels"
            ]
        )
    for index, text in enumerate(queries):
        result = select_patches(
            context,
            text,
            strategy,
            budget,
            model=model,
            grid=grid,
            gaze=parse_point(gaze, "--gaze"),
            token_budget=token_budget,
            balancer=balancer,
            min_match=min_match,
            seed=seed,
            **parse_options(option, "--option"),
        )
        stem = f"{image.stem}_{strategy}" + (f"_q{index + 1}" if len(queries) > 1 else "")
        json_path = json_file if json_file and len(queries) == 1 else None
        if json_file and len(queries) > 1:
            json_path = json_file.with_name(f"{json_file.stem}_q{index + 1}{json_file.suffix}")
        _report(image, text, result, out / f"{stem}.png", json_path or out / f"{stem}.json")


def _report(image: Path, query: str, result, picture_path: Path, json_path: Path) -> None:
    allocation = result.allocation
    picture = save_allocation_picture(result.image, allocation, result.relevance, picture_path)
    written = [picture, allocation.save_json(json_path)]
    report = allocation.to_json()["accounting"]
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}")
    cached = f", reused {', '.join(report['cached'])}" if report.get("cached") else ""
    console.print(
        f"{image.name} {shown(query)}: kept {report['patches_kept']}/{report['finest_cells']} "
        f"patches, tokens {report['tokens_kept']} vs {report['tokens_full_grid']} full; "
        f"{report['total_ms']:.0f} ms, model {report['encoder_gflops']:.2f} GFLOPs{cached}"
    )
    for path in written:
        console.print(f"  wrote {path}")


def register(app: typer.Typer) -> None:
    app.command("select")(user_errors(select_command))
