"""``clusterlens select VIDEO``: the (frame, cell) cells of a clip that matter for a question.

``select`` hands a video file or a folder of frames here. The budget is tokens per
frame on average; the clip's budget is that times its frames, and the strategy may
spend it unevenly. Writes, per query: the allocation JSON, an animated GIF of the
kept cells, and a frame x cell "budget over time" strip.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from clusterlens.cli._common import console, parse_options, print_notes
from clusterlens.pipeline import shown
from clusterlens.video import VIDEO_STRATEGIES, VideoContext, open_video, select_video
from clusterlens.viz.video import save_budget_strip, save_video_gif

#: ``select``'s default strategy is an image strategy; for a clip it means this one.
IMAGE_DEFAULT = "cluster-cascade"
#: ``--option`` keys that shape how the clip is read rather than the strategy.
READ_OPTIONS = {"frame_stride", "max_frames"}
#: ``--option`` keys passed on to :func:`~clusterlens.video.select_video`.
STRATEGY_OPTIONS = {"interval", "oversample", "halo", "clusters"}


def run_select_video(
    video: Path,
    queries: list[str],
    strategy: str,
    budget: int,
    model: str | None,
    grid: int,
    max_side: int,
    options: list[str] | None,
    out: Path,
    json_file: Path | None,
) -> None:
    """Answer every query on one clip; the clip's decoded frames, model passes and
    flows are kept between queries (a :class:`~clusterlens.video.VideoContext`)."""
    if strategy == IMAGE_DEFAULT:
        strategy = "temporal-cascade"
    elif strategy not in VIDEO_STRATEGIES:
        raise ValueError(
            f"{strategy!r} is an image strategy; for a video choose one of "
            f"{', '.join(VIDEO_STRATEGIES)}"
        )
    if budget < 1:
        raise ValueError(f"--budget must be a positive number of tokens per frame, got {budget}")
    settings = parse_options(options, "--option")
    unknown = sorted(set(settings) - READ_OPTIONS - STRATEGY_OPTIONS)
    if unknown:
        raise ValueError(
            f"unknown --option {', '.join(unknown)} for a video; accepted: "
            f"{', '.join(sorted(READ_OPTIONS | STRATEGY_OPTIONS))}"
        )
    read = {key: settings.pop(key) for key in list(settings) if key in READ_OPTIONS}
    frames = open_video(video, max_side=max_side or None, **_read_options(read))
    _note_size(video, frames)
    context = VideoContext(frames)
    for index, text in enumerate(queries):
        allocation = select_video(
            context, text, strategy, budget * len(frames), model=model, grid=grid, **settings
        )
        stem = f"{video.stem}_{strategy}" + (f"_q{index + 1}" if len(queries) > 1 else "")
        json_path = json_file if json_file and len(queries) == 1 else out / f"{stem}.json"
        if json_file and len(queries) > 1:
            json_path = json_file.with_name(f"{json_file.stem}_q{index + 1}{json_file.suffix}")
        _report(video, text, allocation, frames, out / stem, json_path)


def _read_options(read: dict[str, int]) -> dict[str, Any]:
    return {"frame_stride": read.get("frame_stride", 1), "max_frames": read.get("max_frames")}


def _note_size(video: Path, frames) -> None:
    (height, width), (h, w) = frames.original_size, frames.size
    if (h, w) != (height, width):
        print_notes(
            [
                f"{video.name}'s frames are {width}x{height}; processed at {w}x{h} "
                "(--max-side; 0 keeps the full size); boxes are in the original's pixels"
            ]
        )


def _report(video: Path, query: str, allocation, frames, stem: Path, json_path: Path) -> None:
    written = [
        allocation.save_json(json_path),
        save_video_gif(frames, allocation, stem.with_suffix(".gif")),
        save_budget_strip(allocation, stem.with_name(stem.name + "_budget.png")),
    ]
    for note in allocation.notes:
        console.print(f"[yellow]note:[/] {note}")
    cost = allocation.cost
    cached = f", reused {', '.join(cost['cached'])}" if cost.get("cached") else ""
    console.print(
        f"{video.name} {shown(query)}: kept {len(allocation)} of "
        f"{allocation.frame_count * allocation.grid.size} cells over {allocation.frame_count} "
        f"frames ({allocation.strategy}); {cost['total_ms']:.0f} ms "
        f"({cost['total_ms_per_frame']:.0f} per frame), model {cost['encoder_gflops']:.2f} "
        f"GFLOPs{cached}"
    )
    for path in written:
        console.print(f"  wrote {path}")
