"""Contact sheet of label-error candidates: label boxes against predictions.

Each panel is one image of :func:`clusterlens.catalog.label_errors.rank_label_errors`'s
ranking. Thin white boxes are the label file's boxes, thin dashed grey ones the model's
predictions (at or above ``min_confidence``); each candidate box (the best
:data:`MAX_BOXES` scoring :data:`MIN_BOX_SCORE` or more) is drawn thick in its kind's
colour with its kind, class and score. The sheet is saved as a palette PNG
(192 colours): photographs drawn this way stay a few hundred kilobytes.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402
from PIL import Image  # noqa: E402

from clusterlens.catalog.label_errors import ImageLabelIssue, LabelledImage  # noqa: E402
from clusterlens.viz._layout import DPI, panel_height  # noqa: E402

#: Colour of each kind of candidate (colour-blind-safe Okabe-Ito hues).
KIND_COLOURS = {
    "missing": "#FFB000",
    "spurious": "#FF3030",
    "wrong_class": "#E040FF",
    "badly_placed": "#30C8FF",
}
PANEL_INCHES = 3.3
#: Candidates below this score are not drawn (a weak model doubts every small label).
MIN_BOX_SCORE = 0.1
#: Most candidates drawn per image.
MAX_BOXES = 4


def draw_label_issue(
    axis: plt.Axes,
    pixels: np.ndarray,
    issue: ImageLabelIssue,
    image: LabelledImage | None = None,
    min_confidence: float = 0.0,
    title: str | None = None,
) -> None:
    """One panel: the image, its labels and predictions (if given), the candidates."""
    axis.imshow(pixels)
    if image is not None:
        for box in image.label_boxes:
            _rectangle(axis, box, "white", 0.7, "-")
        for box in image.pred_boxes[image.pred_conf >= min_confidence]:
            _rectangle(axis, box, "#bbbbbb", 0.7, "--")
    shown = [b for b in issue.boxes if b.score >= MIN_BOX_SCORE][:MAX_BOXES]
    for candidate in shown:
        colour = KIND_COLOURS.get(candidate.kind, "red")
        _rectangle(axis, candidate.box, colour, 2.0, "-")
        axis.text(
            candidate.box[0],
            candidate.box[1] - 2,
            f"{candidate.kind} {candidate.class_name} {candidate.score:.2f}",
            color="black",
            fontsize=5.5,
            va="bottom",
            clip_on=True,  # labels past the edge would shrink the panel in tight_layout
            bbox={"facecolor": colour, "edgecolor": "none", "pad": 0.8, "alpha": 0.85},
        )
    axis.set_title(title or f"{Path(issue.path).stem}  score {issue.score:.2f}", fontsize=7)
    axis.axis("off")


def _rectangle(axis: plt.Axes, box, colour: str, width: float, style: str) -> None:
    x1, y1, x2, y2 = (float(v) for v in box)
    axis.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colour, lw=width, ls=style))


def save_label_issue_sheet(
    issues: Sequence[ImageLabelIssue],
    path: str | Path,
    *,
    images: Mapping[int, LabelledImage] | None = None,
    titles: Mapping[int, str] | None = None,
    min_confidence: float = 0.0,
    columns: int = 4,
) -> Path:
    """Write a PNG contact sheet of ``issues`` (in their order) to ``path``.

    Args:
        issues: ranked images, e.g. ``rank_label_errors(db, model, top=8)``.
        path: the PNG to write (folders created).
        images: image id -> its labels and predictions
            (:func:`~clusterlens.catalog.label_errors.load_images`), drawn thin.
        titles: image id -> panel title (default: file name and score).
        min_confidence: predictions below this are not drawn.
        columns: panels per row.

    Raises:
        ValueError: no issues, or ``columns`` < 1.
        FileNotFoundError: an image file of an issue is gone.
    """
    if not issues:
        raise ValueError("no label issues to draw: the ranking returned no images")
    if columns < 1:
        raise ValueError(f"columns must be at least 1, got {columns}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = [_load(issue.path) for issue in issues]
    columns = min(columns, len(issues))
    rows = math.ceil(len(issues) / columns)
    aspect = max(p.shape[0] / p.shape[1] for p in pictures)
    height = panel_height(PANEL_INCHES, aspect) + 0.3
    figure, axes = plt.subplots(
        rows,
        columns,
        figsize=(PANEL_INCHES * columns, height * rows + 0.4),
        dpi=DPI,
        squeeze=False,
    )
    for axis in axes.ravel():
        axis.axis("off")
    for axis, issue, pixels in zip(axes.ravel(), issues, pictures, strict=False):
        draw_label_issue(
            axis,
            pixels,
            issue,
            (images or {}).get(issue.image_id),
            min_confidence,
            (titles or {}).get(issue.image_id),
        )
    figure.legend(handles=_legend(), loc="lower center", ncol=6, fontsize=7, frameon=False)
    figure.tight_layout(rect=(0, 0.04, 1, 1))
    _save_palette_png(figure, path)
    plt.close(figure)
    return path


def _legend() -> list[Line2D]:
    handles = [Line2D([], [], color=c, lw=2, label=k) for k, c in KIND_COLOURS.items()]
    handles.append(Line2D([], [], color="#444444", lw=1, label="label box (white)"))
    handles.append(Line2D([], [], color="#888888", lw=1, ls="--", label="prediction"))
    return handles


def _load(path: str) -> np.ndarray:
    if not Path(path).is_file():
        raise FileNotFoundError(f"image {path} of a label issue is missing")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _save_palette_png(figure: plt.Figure, path: Path) -> None:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", facecolor="white")
    buffer.seek(0)
    with Image.open(buffer) as rendered:
        palette = rendered.convert("RGB").quantize(192, method=Image.Quantize.FASTOCTREE)
        palette.save(path, optimize=True)
