"""``select_video``: choose (frame, cell) cells of a clip for a query, under one budget.

    >>> from clusterlens.video import select_video
    >>> kept = select_video("drive.mp4", "cars", budget=64 * 30)  # doctest: +SKIP
    >>> kept.tokens_per_frame()  # doctest: +SKIP

A cell costs one token; the budget is for the whole clip, so a strategy may give one
frame many cells and another none. See :mod:`clusterlens.video.strategies` for the
strategies and docs/video.md for what they cost.
"""

from __future__ import annotations

import numbers
import os
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from clusterlens.allocate import PatchGrid
from clusterlens.relevance.query_parse import parse_query
from clusterlens.video import strategies
from clusterlens.video.allocation import VideoAllocation
from clusterlens.video.context import Ledger, VideoContext
from clusterlens.video.coupling import ClipCoupling
from clusterlens.video.frames import VideoFrames, open_video

DEFAULT_MODEL = "offline:camvid"
#: Tokens per frame on average when no budget is given.
DEFAULT_PER_FRAME = 64


def select_video(
    video: str | os.PathLike | Sequence[Any] | VideoFrames | VideoContext,
    query: str | None,
    strategy: str = "temporal-cascade",
    budget: int | None = None,
    *,
    model: str | Any | None = None,
    grid: int | tuple[int, int] = 32,
    max_side: int | None = 1024,
    frame_stride: int = 1,
    max_frames: int | None = None,
    interval: int = strategies.INTERVAL,
    oversample: float = strategies.OVERSAMPLE,
    halo: int = 1,
    clusters: bool = False,
) -> VideoAllocation:
    """Keep the ``budget`` (frame, cell) cells of ``video`` that matter for ``query``.

    Args:
        video: a video file, a folder of frames, a list of images, a
            :class:`~clusterlens.video.frames.VideoFrames`, or a
            :class:`~clusterlens.video.context.VideoContext` (to reuse decoded frames,
            model passes and flows of earlier queries; ``max_side``, ``frame_stride``
            and ``max_frames`` are then the context's).
        query: what to look for; its object phrases are matched to the model's classes.
        strategy: one of :data:`~clusterlens.video.strategies.VIDEO_STRATEGIES`.
        budget: cells (tokens) for the whole clip; default 64 per frame.
        model: the relevance model's registry name (default ``offline:camvid``) or a
            loaded model, as for :func:`clusterlens.pipeline.select_patches`.
        grid: cells per side of every frame's grid.
        interval, oversample, halo: the temporal cascade's options.
        clusters: also give each kept cell the id of its centre pixel's region, ids
            carried through the clip (:func:`clusterlens.video.pyramid.carry_clusters`;
            every frame is decoded and clustered: ``clusters_ms``).

    Raises:
        ValueError: unknown strategy, bad budget, or a clip that cannot be read.
    """
    started = time.perf_counter()
    if strategy not in strategies.VIDEO_STRATEGIES:
        raise ValueError(
            f"unknown video strategy {strategy!r}; choose one of "
            f"{', '.join(strategies.VIDEO_STRATEGIES)}"
        )
    ledger = Ledger()
    context = _video_context(video, max_side, frame_stride, max_frames, ledger)
    frames = len(context)
    budget = DEFAULT_PER_FRAME * frames if budget is None else budget
    if isinstance(budget, bool) or not isinstance(budget, numbers.Integral) or budget < 1:
        raise ValueError(f"budget must be a positive whole number of cells, got {budget!r}")
    budget = int(budget)
    height, width = context.frames.size
    cells = PatchGrid.from_count(height, width, grid)
    notes: list[str] = []
    name, loaded, classes, match = _match(query, model, strategy, notes, ledger)
    if strategy == "uniform" or not classes:
        chosen = strategies.uniform(cells, frames, budget)
        used = "uniform"
    else:
        clip = ClipCoupling(context, loaded, name, classes, cells, ledger)
        chosen = _run(strategy, clip, budget, interval, oversample, halo)
        used = strategy
    if budget > frames * cells.size:
        notes.append(f"budget {budget} exceeds the clip's {frames * cells.size} cells: all kept")
    original = PatchGrid(*context.frames.original_size, cells.rows, cells.cols)
    allocation = VideoAllocation(
        used, original, frames, chosen.frames, chosen.rows, chosen.cols, chosen.scores,
        budget, query=query or None,
        meta={"model": name if classes else None, "classes": list(classes),
              "query_match": match, "frame_size": [height, width], **chosen.meta},
        notes=notes,
    )  # fmt: skip
    if clusters:
        allocation.clusters = _cell_clusters(context, cells, chosen, ledger)
    allocation.cost = _accounting(ledger, started, frames)
    return allocation


def _cell_clusters(
    context: VideoContext, cells: PatchGrid, chosen: strategies.Chosen, ledger: Ledger
) -> np.ndarray:
    """The carried cluster id at each kept cell's centre pixel.

    Maps are read frame by frame and only the kept cells' pixels are kept: a long,
    large clip never holds every frame's full-size map.
    """
    from clusterlens.video.pyramid import iter_carried_clusters  # local: regions on demand

    started = time.perf_counter()
    row_starts, row_ends, col_starts, col_ends = cells.spans()
    ys = (row_starts[chosen.rows] + row_ends[chosen.rows] - 1) // 2
    xs = (col_starts[chosen.cols] + col_ends[chosen.cols] - 1) // 2
    frames = np.asarray(chosen.frames)
    ids = np.full(len(frames), -1, np.int64)
    keyframes = 0
    for index, (id_map, is_keyframe) in enumerate(
        iter_carried_clusters(rgb for _, rgb in context.frames)
    ):
        here = frames == index
        ids[here] = id_map[ys[here], xs[here]]
        keyframes += is_keyframe
    ledger.add("clusters_ms", (time.perf_counter() - started) * 1000)
    ledger.add("cluster_keyframes", keyframes)
    return ids


def _video_context(
    video: Any,
    max_side: int | None,
    stride: int,
    max_frames: int | None,
    ledger: Ledger,
) -> VideoContext:
    if isinstance(video, VideoContext):
        return video
    started = time.perf_counter()
    frames = open_video(video, max_side=max_side, frame_stride=stride, max_frames=max_frames)
    ledger.add("open_ms", (time.perf_counter() - started) * 1000)
    return VideoContext(frames)


def _match(
    query: str | None, model: Any, strategy: str, notes: list[str], ledger: Ledger
) -> tuple[str, Any, tuple[str, ...], dict[str, Any] | None]:
    """The model and the classes the query's object phrases match (none: uniform)."""
    from clusterlens.pipeline import _model  # local: loads the model registry on demand

    loaded = model if model is not None and not isinstance(model, str) else None
    name = getattr(loaded, "name", None) or model or DEFAULT_MODEL
    if strategy == "uniform":
        return name, None, (), None
    parse = parse_query(query)
    if not parse.objects:
        notes.append(
            f"query {query!r} names no object ({parse.intent}): cells chosen uniformly "
            "(video strategies score the query's objects only)"
        )
        return name, None, (), None
    if parse.negations or parse.regions or parse.near:
        notes.append("video strategies use the query's objects only; negations, regions "
                     "and 'near' are ignored")  # fmt: skip
    if loaded is None:
        started = time.perf_counter()
        loaded = _model(name)
        ledger.add("load_model_ms", (time.perf_counter() - started) * 1000)
    classes: list[str] = []
    phrases = []
    started = time.perf_counter()  # the first match loads the sentence model
    for phrase in parse.objects:
        match = loaded.match_query(phrase)
        phrases.append({"phrase": phrase, "matched": match.matched, "classes": list(match.classes)})
        if match.matched:
            classes.extend(match.classes)
        else:
            notes.append(f"{phrase!r} names none of {name}'s classes: left out")
    ledger.add("match_ms", (time.perf_counter() - started) * 1000)
    if not classes:
        notes.append("no object of the query matched: cells chosen uniformly")
    return name, loaded, tuple(dict.fromkeys(classes)), {"phrases": phrases}


def _run(
    strategy: str, clip: ClipCoupling, budget: int, interval: int, oversample: float, halo: int
) -> strategies.Chosen:
    if strategy == "temporal-cascade":
        return strategies.temporal_cascade(clip, budget, interval, oversample, halo)
    if strategy == "exhaustive":
        return strategies.exhaustive(clip, budget)
    return strategies.per_frame(clip, budget)


def _accounting(ledger: Ledger, started: float, frames: int) -> dict[str, Any]:
    """The call's cost, as ``select_patches`` reports it for an image."""
    encoder = ledger.encoder()
    # FLOP counting is instrumentation, not work: kept out of total_ms (as for images)
    total = (time.perf_counter() - started) * 1000 - encoder["flop_count_ms"]
    cost: dict[str, Any] = {
        "total_ms": round(total, 2),
        "total_ms_per_frame": round(total / max(frames, 1), 2),
        **encoder,
        **{key: round(value, 2) for key, value in sorted(ledger.values.items())},
        "cached": [f"{what} ({count})" for what, count in sorted(ledger.cached.items())],
    }
    for count in ("frames_decoded", "flows_computed", "cluster_keyframes"):
        if count in cost:
            cost[count] = int(cost[count])
    return cost
