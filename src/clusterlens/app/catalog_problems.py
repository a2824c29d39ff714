"""The catalog tab's Problems view: the rankings of ``clusterlens catalog issues``, shown.

Four rankings, the same functions the command calls, on the catalog opened read-only
(``CatalogStore(readonly=True)``):

- label-error candidates (:func:`clusterlens.catalog.label_errors.rank_label_errors`),
  drawn by :func:`clusterlens.viz.label_issues.draw_label_issue` (label boxes white,
  predictions dashed grey, each candidate in its kind's colour), with the loss
  component that is off and the neighbours whose losses disagree;
- near-duplicate pairs (:func:`clusterlens.catalog.near_duplicates.near_duplicates`),
  the two images side by side, with the signals the caller chose (``duplicate_signals``,
  as ``catalog issues --duplicate-signals``; leaving out ``pixels`` reads no image file);
- hard images and outliers (:mod:`clusterlens.catalog.curation`).

No Gradio here: each function returns arrays and text (a message last), and a
ranking that lacks its data (no labels, no predictions, no embeddings) returns the
ranking's own message instead of raising. Pictures are read through
:class:`~clusterlens.app.catalog.CatalogView`, so only paths the catalog recorded are
ever opened.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.app.catalog import DETAIL_SIDE, CatalogView, guarded
from clusterlens.catalog.curation import HardImage, Outlier, hard_images, outliers
from clusterlens.catalog.label_errors import (
    DEFAULT_MIN_CONFIDENCE,
    KIND_COMPONENT,
    BoxIssue,
    ImageLabelIssue,
    LabelledImage,
    LossEvidence,
    rank_label_errors_with_evidence,
)
from clusterlens.catalog.near_duplicates import (
    SIGNALS,
    DuplicatePair,
    check_signals,
    loss_signal_note,
    near_duplicates,
)
from clusterlens.catalog.store import CatalogStore

#: The rankings, in the order of ``clusterlens catalog issues``, and their titles.
SECTIONS = {
    "label_errors": "label-error candidates",
    "near_duplicates": "near-duplicate pairs",
    "hard_images": "hard images",
    "outliers": "outliers",
}
DEFAULT_TOP = 10
MAX_TOP = 100
#: Pixels of the longer side of a detail picture (the page shows them about 450 wide).
PICTURE_SIDE = 640


@dataclass(frozen=True)
class LabelErrorCandidate:
    """One ranked image with what its detail needs: its labels and predictions (to
    draw them), its loss evidence, and its neighbours' loss values."""

    issue: ImageLabelIssue
    image: LabelledImage | None
    evidence: LossEvidence | None
    neighbour_losses: dict[int, dict[str, float]] = field(default_factory=dict)


# ---------------------------------------------------------------------- rankings


def rank_problems(
    view: CatalogView,
    section: str,
    model: str,
    top: int,
    duplicate_signals: str | Iterable[str] = SIGNALS,
) -> list[Any]:
    """The ``top`` items of one ranking of ``model``, best first.

    ``duplicate_signals``: the near-duplicate signals used (any of
    :data:`~clusterlens.catalog.near_duplicates.SIGNALS`); other rankings ignore it.

    Raises:
        ValueError: an unknown section or signal, ``top`` outside 1..:data:`MAX_TOP`, or
            a catalog that cannot feed the ranking (the ranking's own message: what is
            missing, what to run).
    """
    if section not in SECTIONS:
        raise ValueError(f"no ranking {section!r}; choose one of {', '.join(SECTIONS)}")
    if not model:
        raise ValueError("the catalog holds no YOLO model: build one with a yolo: model")
    if not 1 <= int(top) <= MAX_TOP:  # each item is a thumbnail sent to the page
        raise ValueError(f"top N must be a whole number from 1 to {MAX_TOP}, got {top!r}")
    ranker = _RANKERS[section]
    if section == "near_duplicates":  # the only ranking with a choice of signals
        ranker = partial(_near_duplicates, signals=check_signals(duplicate_signals))
    with CatalogStore(view.db, readonly=True) as store:
        return ranker(store, model, int(top))


def _label_error_candidates(store: CatalogStore, model: str, top: int) -> list[LabelErrorCandidate]:
    # the ranking's own images and evidence: reading them again cost about a second a click
    ranking = rank_label_errors_with_evidence(store, model, top=top)
    candidates = []
    for issue in ranking.issues:
        own = ranking.evidence.get(issue.image_id)
        near = own.neighbours if own else ()
        losses = {j: ranking.evidence[j].values for j in near if j in ranking.evidence}
        image = ranking.images.get(issue.image_id)
        candidates.append(LabelErrorCandidate(issue, image, own, losses))
    return candidates


def _near_duplicates(
    store: CatalogStore, model: str, top: int, *, signals: tuple[str, ...]
) -> list[DuplicatePair]:
    return near_duplicates(store, model, top=top, signals=signals)


def _hard_images(store: CatalogStore, model: str, top: int) -> list[HardImage]:
    return hard_images(store, model, top=top)


def _outliers(store: CatalogStore, model: str, top: int) -> list[Outlier]:
    return outliers(store, model, top=top)


_RANKERS: dict[str, Callable[[CatalogStore, str, int], list[Any]]] = {
    "label_errors": _label_error_candidates,
    "near_duplicates": _near_duplicates,
    "hard_images": _hard_images,
    "outliers": _outliers,
}


def section_note(
    view: CatalogView, section: str, model: str, duplicate_signals: str | Iterable[str] = SIGNALS
) -> str:
    """What limits a ranking here ('' when nothing): near-duplicates say when the loss
    signal is asked for but unavailable, as the command does."""
    if section != "near_duplicates" or "loss" not in check_signals(duplicate_signals):
        return ""
    with CatalogStore(view.db, readonly=True) as store:
        return loss_signal_note(store, model) or ""


# ---------------------------------------------------------------------- the grid


@guarded("problems")
def problem_grid(
    view: CatalogView,
    section: str,
    model: str,
    top: int,
    duplicate_signals: str | Iterable[str] = SIGNALS,
) -> tuple[list[tuple[np.ndarray, str]], list[Any], str]:
    """Thumbnails of a ranking in rank order (a pair as its two thumbnails side by
    side), the ranked items (for the click), and a line saying what is shown.
    ``duplicate_signals``: as :func:`rank_problems`."""
    ranked = rank_problems(view, section, model, top, duplicate_signals)
    items = [(_grid_thumbnail(view, item), _caption(item)) for item in ranked]
    line = f"{SECTIONS[section]} of {model}: {len(ranked)} (top {int(top)}), best first"
    if not ranked:
        line = f"{SECTIONS[section]} of {model}: none found"
    note = section_note(view, section, model, duplicate_signals)
    return items, ranked, f"{line}; note: {note}" if note else line


def _grid_thumbnail(view: CatalogView, item: Any) -> np.ndarray:
    if isinstance(item, DuplicatePair):
        return side_by_side(view.thumbnail(item.image_a), view.thumbnail(item.image_b))
    return view.thumbnail(_image_id(item))


def _image_id(item: Any) -> int:
    return item.issue.image_id if isinstance(item, LabelErrorCandidate) else item.image_id


def _caption(item: Any) -> str:
    if isinstance(item, LabelErrorCandidate):
        # no candidate box: the score, if any, is the loss evidence alone
        kind = item.issue.boxes[0].kind if item.issue.boxes else "loss only"
        return f"#{item.issue.image_id} {kind} {item.issue.score:.2f}"
    if isinstance(item, DuplicatePair):
        return f"#{item.image_a} ~ #{item.image_b} cos {item.cosine:.3f}"
    if isinstance(item, HardImage):
        return f"#{item.image_id} {item.component} z {item.score:+.1f}"
    return f"#{item.image_id} d {item.distance:.3g} z {item.score:+.1f}"


def side_by_side(left: np.ndarray, right: np.ndarray, gap: int = 4) -> np.ndarray:
    """Two RGB pictures next to each other at the height of the taller, on white."""
    height = max(left.shape[0], right.shape[0])
    scaled = [_to_height(picture, height) for picture in (left, right)]
    spacer = np.full((height, gap, 3), 255, np.uint8)
    return np.concatenate([scaled[0], spacer, scaled[1]], axis=1)


def _to_height(picture: np.ndarray, height: int) -> np.ndarray:
    if picture.shape[0] == height:
        return picture
    width = max(1, round(picture.shape[1] * height / picture.shape[0]))
    return cv2.resize(picture, (width, height), interpolation=cv2.INTER_LINEAR)


def _fit(picture: np.ndarray, side: int = DETAIL_SIDE) -> np.ndarray:
    """Enlarged or shrunk so its longer side is ``side`` (small images stay readable)."""
    scale = side / max(picture.shape[:2])
    size = (max(1, round(picture.shape[1] * scale)), max(1, round(picture.shape[0] * scale)))
    method = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(picture, size, interpolation=method)


# ---------------------------------------------------------------------- one item


@guarded("problem")
def problem_detail(
    view: CatalogView, item: Any
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str]:
    """A clicked item: its picture, thumbnails of the images it is compared with
    (neighbours), and the reasons as Markdown."""
    if isinstance(item, LabelErrorCandidate):
        return _label_error_detail(view, item)
    if isinstance(item, DuplicatePair):
        return _duplicate_detail(view, item)
    if isinstance(item, HardImage):
        return _fit(view.image(item.image_id)), [], _hard_text(view, item)
    if isinstance(item, Outlier):
        return _outlier_detail(view, item)
    raise ValueError(f"nothing to show for {type(item).__name__}")


def _label_error_detail(
    view: CatalogView, candidate: LabelErrorCandidate
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str]:
    pixels = view.read_image(candidate.issue.path)  # refused unless the catalog recorded it
    picture = draw_candidate(pixels, candidate)
    component = worst_component(candidate.evidence)
    neighbours = [
        (view.thumbnail(j), f"#{j} {component} {values.get(component, float('nan')):.3g}")
        for j, values in candidate.neighbour_losses.items()
        if component
    ]
    return picture, neighbours, label_error_text(view, candidate)


def draw_candidate(
    pixels: np.ndarray, candidate: LabelErrorCandidate, side: int = PICTURE_SIDE
) -> np.ndarray:
    """The image with its label boxes, predictions and candidate boxes, drawn by
    :func:`~clusterlens.viz.label_issues.draw_label_issue`, as an RGB array whose
    longer side is about ``side`` pixels, with a legend of the kinds drawn."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    from clusterlens.viz.label_issues import KIND_COLOURS, PANEL_INCHES, draw_label_issue

    aspect = float(np.clip(pixels.shape[0] / pixels.shape[1], 0.25, 4.0))
    width = PANEL_INCHES if aspect <= 1 else PANEL_INCHES / aspect
    dpi = side / max(width, width * aspect)
    # the label boxes' fonts are set in points: a small figure at a high dpi reads well
    # a Figure of its own, not pyplot's: Gradio runs handlers on threads, pyplot's
    # global figure list is not thread-safe
    figure = Figure(figsize=(width, width * aspect + 0.5), dpi=dpi)
    canvas = FigureCanvasAgg(figure)
    axis = figure.add_axes((0.0, 0.1, 1.0, 0.82))
    draw_label_issue(axis, pixels, candidate.issue, candidate.image, DEFAULT_MIN_CONFIDENCE)
    kinds = dict.fromkeys(box.kind for box in drawn_boxes(candidate.issue))
    handles = [Line2D([], [], color=KIND_COLOURS.get(k, "red"), lw=2, label=k) for k in kinds]
    handles += [
        Line2D([], [], color="#444444", lw=1, label="label (white)"),
        Line2D([], [], color="#888888", lw=1, ls="--", label="prediction"),
    ]
    figure.legend(handles=handles, loc="lower center", ncol=3, fontsize=5, frameon=False)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def drawn_boxes(issue: ImageLabelIssue) -> tuple[BoxIssue, ...]:
    """The candidate boxes ``draw_label_issue`` draws thick (the best few, not the
    faint doubts a weak model has about every small label)."""
    from clusterlens.viz.label_issues import MAX_BOXES, MIN_BOX_SCORE

    return tuple(box for box in issue.boxes if box.score >= MIN_BOX_SCORE)[:MAX_BOXES]


def worst_component(evidence: LossEvidence | None) -> str:
    """The loss component furthest above both the data set and the neighbours
    ('' without loss evidence)."""
    if evidence is None or not evidence.values:
        return ""
    return max(evidence.values, key=evidence.z)


def label_error_text(view: CatalogView, candidate: LabelErrorCandidate) -> str:
    """The reasons as Markdown: the image's score and summary, each drawn candidate box
    (kind, class, score, the loss component that kind drives up, why), the loss
    component that is off and the neighbours whose losses disagree."""
    issue = candidate.issue
    drawn = drawn_boxes(issue)
    lines = [
        f"**#{issue.image_id} {Path(issue.path).name}**: label-error score {issue.score:.2f}",
        "",
        issue.reason,
        "",
        *(
            f"- **{box.kind}** {box.class_name}, score {box.score:.2f}, drives up the "
            f"{KIND_COMPONENT.get(box.kind, '?')} loss: {box.reason}"
            for box in drawn
        ),
    ]
    if len(issue.boxes) > len(drawn):
        lines.append(f"- and {len(issue.boxes) - len(drawn)} weaker candidate box(es), not drawn")
    lines += ["", _evidence_text(candidate)]
    return "\n".join(lines)


def _evidence_text(candidate: LabelErrorCandidate) -> str:
    evidence, component = candidate.evidence, worst_component(candidate.evidence)
    if not component:
        return "No loss evidence: the catalog holds no losses for this image."
    near = ", ".join(
        f"#{j} {values.get(component, float('nan')):.3g}"
        for j, values in candidate.neighbour_losses.items()
    )
    return (
        f"Loss component that is off: **{component}** = {evidence.values[component]:.3g} "
        f"(robust z {evidence.z_global[component]:+.1f} against the data set, "
        f"{evidence.z_neighbours[component]:+.1f} against its nearest images). "
        f"Its {len(candidate.neighbour_losses)} nearest images by the model's embedding "
        f"and their {component} loss: {near or 'none'}."
    )


def _duplicate_detail(
    view: CatalogView, pair: DuplicatePair
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str]:
    half = PICTURE_SIDE // 2
    picture = side_by_side(
        _fit(view.image(pair.image_a), half), _fit(view.image(pair.image_b), half)
    )
    text = (
        f"**#{pair.image_a} {Path(pair.path_a).name} ~ #{pair.image_b} "
        f"{Path(pair.path_b).name}**\n\n"
        f"cosine similarity {pair.cosine:.4f}; score {pair.score:.3g} (the mean of the "
        f"ratios, lower is closer); flagged by: {', '.join(pair.agree) or 'none'}\n\n"
        f"Why: {pair.reason}"
    )
    return picture, [], text


def _hard_text(view: CatalogView, item: HardImage) -> str:
    rows = "\n".join(
        f"| {name} | {value:.4g} | {z:+.1f} |" for name, (value, z) in item.signals.items()
    )
    return (
        f"**#{item.image_id} {Path(item.path).name}**: hardness {item.score:+.1f} "
        f"(the largest robust z of its signals)\n\nWhy: {item.reason}\n\n"
        "| signal | value | robust z (up: worse) |\n|---|---|---|\n" + rows
    )


def _outlier_detail(
    view: CatalogView, item: Outlier
) -> tuple[np.ndarray, list[tuple[np.ndarray, str]], str]:
    neighbours = [(view.thumbnail(j), f"#{j} d={d:.3g}") for j, _, d in item.neighbours]
    text = (
        f"**#{item.image_id} {Path(item.path).name}**: outlier score {item.score:+.1f}\n\n"
        f"Why: {item.reason}\n\nIts nearest images are shown with their cosine "
        "distance."
    )
    return _fit(view.image(item.image_id)), neighbours, text
