"""Pictures of an allocation: kept patches on the image, the relevance beside it."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from clusterlens.allocate import Allocation  # noqa: E402
from clusterlens.viz._layout import DPI, panel_height  # noqa: E402

DIM = 0.3  # brightness of what the allocation drops


def boxes_on(image: np.ndarray, allocation: Allocation) -> np.ndarray:
    """Kept patches as pixel boxes of ``image`` (which may be a resized copy)."""
    height, width = image.shape[:2]
    scale = np.array([width, height, width, height])
    boxes = np.round(allocation.boxes * scale).astype(np.int64)
    boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
    return boxes


def kept_overlay(image: np.ndarray, allocation: Allocation) -> np.ndarray:
    """The image with everything outside the kept patches dimmed to DIM."""
    keep = np.zeros(image.shape[:2], dtype=bool)
    for x0, y0, x1, y1 in boxes_on(image, allocation):
        keep[y0:y1, x0:x1] = True
    return np.where(keep[:, :, None], image, image * DIM)


def save_allocation_picture(
    image: np.ndarray,
    allocation: Allocation,
    relevance: np.ndarray,
    path: str | Path,
    title: str | None = None,
) -> Path:
    """Write a PNG: kept patches outlined and coloured by token budget | relevance map."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    height, width = image.shape[:2]
    size = (12, panel_height(6, height / width) + 0.9)  # bounded for any aspect
    figure, (left, right) = plt.subplots(1, 2, figsize=size, dpi=DPI)
    left.imshow(kept_overlay(image, allocation))
    _outline(left, allocation, boxes_on(image, allocation))
    left.set_title(_accounting(allocation), fontsize=9)
    heat = right.imshow(relevance, cmap="magma", vmin=0, vmax=max(float(relevance.max()), 1e-6))
    right.set_title("balanced relevance " + _weights(allocation), fontsize=9)
    figure.colorbar(heat, ax=right, fraction=0.035, pad=0.02)
    for axis in (left, right):
        axis.axis("off")
    query = f"“{allocation.query}”" if allocation.query else "(no query)"
    figure.suptitle(title or f"{query} — {allocation.strategy}", fontsize=13)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return path


def _outline(axis: plt.Axes, allocation: Allocation, boxes: np.ndarray) -> None:
    budgets = allocation.budgets.astype(float)
    low, high = (budgets.min(), budgets.max()) if len(budgets) else (0.0, 1.0)
    colours = plt.get_cmap("viridis")(
        (budgets - low) / (high - low) if high > low else np.ones_like(budgets)
    )
    for (x0, y0, x1, y1), colour in zip(boxes, colours, strict=True):
        axis.add_patch(
            Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, lw=0.8, ec=colour)
        )


def _accounting(allocation: Allocation) -> str:
    text = f"kept {len(allocation)} of {allocation.grid.size} patches"
    text += f", scored {allocation.cells_scored}"
    if allocation.budgets.max(initial=0) > 1:
        text += f", {allocation.tokens_kept} tokens"
    return text


def _weights(allocation: Allocation) -> str:
    weights = allocation.meta.get("balancer_weights")
    return "(" + ", ".join(f"{k} {v:.2f}" for k, v in weights.items()) + ")" if weights else ""
