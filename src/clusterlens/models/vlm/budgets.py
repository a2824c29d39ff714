"""Variable token budgets: a patch that deserves more tokens is re-encoded from a crop.

An allocation with variable budgets (``allocate(..., token_budget=T)``, seed 02's
64-400 tokens per patch) says how many tokens each kept patch should cost. On the
model's base image a patch covers a fixed number of tokens; a patch whose budget is
larger is cut from the *original* image and given to the model as one more image,
resized so that it becomes about ``budget`` tokens (rows x cols of merged patches with
the crop's aspect ratio), within the processor's pixel limits. Qwen-family processors
accept any number of images per prompt; each crop gets its own M-RoPE frame after
the base image, as in any multi-image Qwen prompt (its place in the base image is not
encoded in its positions).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

if TYPE_CHECKING:
    from clusterlens.allocate import Allocation


@dataclass
class CropPlan:
    """The crops to add, one row per crop.

    Attributes:
        patches: (M,) index of the allocation patch each crop re-encodes.
        boxes: (M, 4) pixel boxes (x0, y0, x1, y1) in the original image.
        rows, cols: (M,) token grid of each crop (rows * cols ~ its budget).
        token_px: pixels per token side (patch_size * merge_size).
        image_size: (height, width) of the original image the boxes refer to.
    """

    patches: np.ndarray
    boxes: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    token_px: int
    image_size: tuple[int, int]

    def __len__(self) -> int:
        return len(self.patches)

    @property
    def tokens(self) -> int:
        return int((self.rows * self.cols).sum())

    def images(self, image: np.ndarray) -> list[np.ndarray]:
        """The crops of ``image`` (H, W, 3), each resized to rows*token_px x cols*token_px."""
        if image.ndim != 3 or image.shape[:2] != self.image_size:
            raise ValueError(
                f"image of shape {image.shape} does not match the allocation's image "
                f"{self.image_size[0]}x{self.image_size[1]}"
            )
        # one resize per crop: each is its own image for the processor
        return [
            cv2.resize(
                np.ascontiguousarray(image[y0:y1, x0:x1]),
                (int(c) * self.token_px, int(r) * self.token_px),
                interpolation=cv2.INTER_CUBIC,
            )
            for (x0, y0, x1, y1), r, c in zip(self.boxes, self.rows, self.cols, strict=True)
        ]


def plan_crops(
    allocation: Allocation,
    base_grid: tuple[int, int],
    token_px: int,
    max_tokens: int,
    min_tokens: int = 4,
) -> CropPlan:
    """Which patches get a crop, and each crop's token grid.

    Args:
        allocation: kept patches with ``budgets`` (tokens per patch).
        base_grid: (rows, cols) token grid of the base image.
        token_px: pixels per token side of the model (28 for Qwen2-VL, 32 for Qwen3-VL).
        max_tokens, min_tokens: the processor's limits per image, in tokens.

    Example:
        >>> import numpy as np
        >>> from clusterlens.allocate import allocate
        >>> relevance = np.zeros((224, 224), np.float32); relevance[:56, :56] = 1
        >>> chosen = allocate(relevance, "topk", 2, grid=8, token_budget=128,
        ...                   token_range=(16, 64))
        >>> plan = plan_crops(chosen, (8, 8), token_px=28, max_tokens=1280)
        >>> plan.rows.tolist(), plan.cols.tolist(), plan.tokens
        ([8, 8], [8, 8], 128)
    """
    if token_px < 1 or not 1 <= min_tokens <= max_tokens:
        raise ValueError(
            f"need token_px >= 1 and 1 <= min_tokens <= max_tokens, got {token_px}, "
            f"{min_tokens}, {max_tokens}"
        )
    boxes = allocation.boxes
    base_rows, base_cols = base_grid
    covered = (boxes[:, 3] - boxes[:, 1]) * base_rows * (boxes[:, 2] - boxes[:, 0]) * base_cols
    budgets = np.clip(allocation.budgets.astype(np.float64), min_tokens, max_tokens)
    chosen = np.flatnonzero(budgets > covered + 1e-9)
    pixel_boxes = allocation.pixel_boxes[chosen]
    aspect = (pixel_boxes[:, 2] - pixel_boxes[:, 0]) / (pixel_boxes[:, 3] - pixel_boxes[:, 1])
    rows = np.maximum(1, np.round(np.sqrt(budgets[chosen] / aspect))).astype(np.int64)
    cols = np.maximum(1, np.round(budgets[chosen] / rows)).astype(np.int64)
    too_many = rows * cols > max_tokens
    cols = np.where(too_many, max_tokens // rows, cols)
    image_size = (allocation.grid.height, allocation.grid.width)
    return CropPlan(chosen, pixel_boxes, rows, cols, token_px, image_size)


def processor_token_limits(processor: object) -> tuple[int, int, int]:
    """(token_px, min_tokens, max_tokens) of a Qwen-family processor's image processor."""
    images = getattr(processor, "image_processor", None)
    try:
        token_px = int(images.patch_size) * int(images.merge_size)
        size = images.size
        low, high = int(size["shortest_edge"]), int(size["longest_edge"])
    except (AttributeError, KeyError, TypeError) as err:
        raise ValueError(
            "variable budgets need a Qwen-family processor (patch_size, merge_size and "
            f"min/max pixels on its image processor): {err}"
        ) from err
    return token_px, max(1, -(-low // token_px**2)), max(1, high // token_px**2)
