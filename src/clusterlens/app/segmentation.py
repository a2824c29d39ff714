"""The segmentation tab's work: MHQR on the chosen image, as plain functions (no Gradio).

The pipeline runs once with the refinement switched off, and the coarse-to-fine
refinement is then applied to that label map: the two maps are the before / after view
of the refinement, and the after map is exactly what ``MHQRSegmenter.segment`` returns
with every stage on (tested), at the cost of one run.
"""

from __future__ import annotations

import functools
import html
import logging
import time
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from clusterlens.app.handlers import USER_ERRORS, open_image, shown, user_message
from clusterlens.app.session import AppSession, ImageSources

log = logging.getLogger(__name__)

#: Dense models offered (the picker takes any registry name): the shipped one first.
SEGMENT_MODELS = (
    "offline:camvid",
    "open_clip:ViT-B-16/laion2b_s34b_b88k",
    "hf:openai/clip-vit-base-patch16",
)
#: Proposers offered; SAM and SAM2 are named with their checkpoint (sam:/path.pth).
PROPOSERS = ("offline",)
DEFAULT_CLASSES = "road, sky, building, tree, car, pedestrian"
#: The segment command's default (``SEGMENT_MAX_SIDE``): MHQR's memory grows with
#: prompts x pixels, and the offline model was trained at about 480 x 360.
SEGMENT_SIDE = 512


@dataclass
class SegmentSettings:
    """The segmentation tab's inputs: classes (comma-separated), models and stages."""

    classes: str = DEFAULT_CLASSES
    model: str = SEGMENT_MODELS[0]
    proposer: str = PROPOSERS[0]
    dynamic_queries: bool = True
    hierarchical: bool = True
    merging: bool = True
    background: bool = False


def parse_classes(text: str) -> list[str]:
    """Comma-separated class names, stripped; duplicates dropped.

    Raises:
        ValueError: no name given.
    """
    names = list(dict.fromkeys(name.strip() for name in (text or "").split(",") if name.strip()))
    if not names:
        raise ValueError("no classes: type comma-separated class names, e.g. 'road, sky, car'")
    return names


@functools.lru_cache(maxsize=4)
def _parts(model: str, proposer: str, background: bool) -> tuple[Any, Any]:
    """The dense predictor and the proposer, loaded once per process and shared by
    every session (their weights are only read; loading takes seconds)."""
    from clusterlens.segment import load_dense_predictor, load_proposer

    return load_dense_predictor(model, background=background), load_proposer(proposer)


def segment_image(rgb: np.ndarray, settings: SegmentSettings) -> dict[str, Any]:
    """MHQR on ``rgb`` with ``settings``: labels before and after the refinement.

    Returns:
        ``classes``, ``before`` and ``after`` ((H, W) labels; ``after`` is ``before``
        when the refinement is off), ``points`` and ``point_classes`` (the prompts),
        ``dense`` (the dense predictor's arg-max) and ``seconds`` per stage.
    """
    from clusterlens.segment import MHQRConfig, MHQRSegmenter

    names = parse_classes(settings.classes)
    predictor, proposer = _parts(settings.model, settings.proposer, settings.background)
    stages = MHQRConfig(
        dynamic_queries=settings.dynamic_queries, hierarchical=False, merging=settings.merging
    )
    segmenter = MHQRSegmenter(predictor, proposer, stages)  # its default coarse-to-fine refiner
    result = segmenter.segment(rgb, names)
    after, seconds = result.labels, dict(result.seconds)
    if settings.hierarchical:
        dense = result.dense
        # as MHQRSegmenter._finer_levels: the pyramid's finer levels, else the dense map
        pyramid = dense.probability_pyramid
        finer = pyramid[1:] if pyramid and len(pyramid) > 1 else (dense.probabilities,)
        started = time.perf_counter()
        after = segmenter.refiner.refine(result.labels, finer)
        seconds["refinement"] += time.perf_counter() - started
    queries = result.queries
    return {
        "classes": list(result.class_names),
        "before": result.labels,
        "after": after,
        "dense": result.dense.labels,
        "points": queries.points if queries is not None else np.zeros((0, 2), np.float32),
        "point_classes": queries.class_indices if queries is not None else np.zeros(0, int),
        "seconds": seconds,
    }


def run_segmentation(
    session: AppSession | None,
    source: str,
    upload: str | None,
    settings: SegmentSettings,
    sources: ImageSources | None = None,
) -> tuple[AppSession, dict[str, Any] | None, str]:
    """Segment the chosen image (at most :data:`SEGMENT_SIDE` on a side) with MHQR.

    Returns:
        the session; a dict of pictures (``prompts``: the image with the prompts in
        their class colour; ``labels``: the final label map; ``before`` / ``after``:
        the label map before and after the refinement), ``legend`` (HTML: each class's
        colour and share of the image) and ``seconds`` (rows [stage, s]); and a message.
    """
    from clusterlens.viz.render import label_picture, palette, points_on

    session = session or AppSession()
    try:
        with session.lock:
            context, _ = open_image(session, source, upload, sources or ImageSources())
        rgb = _bounded(context.rgb)
        found = segment_image(rgb, settings)
    except USER_ERRORS as error:
        return session, None, f"⚠️ {user_message(error)}"
    except Exception as error:  # a bug: keep the server up, say so, keep the trace
        log.exception("segmentation failed")
        return session, None, f"⚠️ internal error ({type(error).__name__}: {error})"
    colours = palette(len(found["classes"]))
    picture = shown(rgb)
    scale = picture.shape[1] / rgb.shape[1]
    before, after = (shown(found[key], nearest=True) for key in ("before", "after"))
    changed = float((found["before"] != found["after"]).mean())
    result = {
        "prompts": points_on(picture, found["points"], colours[found["point_classes"]], scale),
        "labels": label_picture(after, colours),
        "before": label_picture(before, colours),
        "after": label_picture(after, colours),
        "legend": legend_html(found["classes"], colours, found["after"]),
        "seconds": [[stage, f"{value:.3f}"] for stage, value in found["seconds"].items()],
    }
    note = f"{len(found['points'])} prompts; the refinement changed {100 * changed:.1f}% of pixels"
    if not settings.hierarchical:
        note = f"{len(found['points'])} prompts; refinement off (before = after)"
    return session, result, note


def _bounded(rgb: np.ndarray) -> np.ndarray:
    height, width = rgb.shape[:2]
    scale = SEGMENT_SIDE / max(height, width)
    if scale >= 1:
        return rgb
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)


def legend_html(classes: list[str], colours: np.ndarray, labels: np.ndarray) -> str:
    """One swatch per class with its name and share of the label map, largest first."""
    shares = np.bincount(labels.ravel(), minlength=len(classes)) / max(labels.size, 1)
    items = []
    for index in np.argsort(-shares, kind="stable"):
        red, green, blue = (int(c) for c in colours[index])
        swatch = (
            f'<span style="display:inline-block;width:14px;height:14px;'
            f'background:rgb({red},{green},{blue});margin-right:4px"></span>'
        )
        name = html.escape(classes[index])
        items.append(f'<span class="legend-item">{swatch}{name} {100 * shares[index]:.1f}%</span>')
    return '<div id="segment-legend-items">' + " &nbsp; ".join(items) + "</div>"
