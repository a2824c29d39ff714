"""Lazy query coupling: the relevance model runs only where a cascade asks.

A cascade saves compute only if the expensive model is *not* run densely before it
starts. :class:`CouplingSource` is that seam. It holds one image and a dense class
model, and answers three kinds of request, each computing only what it needs:

- :meth:`CouplingSource.coarse_cells`: every cell from one low-resolution pass
  (a quarter of the shipped input side, no flip test-time augmentation: about 4%
  of the dense pass's FLOPs);
- :meth:`CouplingSource.fine_cells`: some cells at the shipped settings, from
  windows of the working image around them, each with a context margin;
- :meth:`CouplingSource.dense_cells`: every cell at the shipped settings (the
  reference, and the fallback).

All class probabilities are kept (they do not depend on the query), so a second
query on the same image reuses every pass already run. Every network call is timed
and counted in FLOPs and input pixels (:class:`EncoderCost`).

**What a cell's coupling is.** The model predicts class probabilities at its working
resolution; the map a user sees is their bilinear upsampling to the image
(``align_corners=False``, as ``torch.nn.functional.interpolate``). Bilinear
upsampling and cell averaging are both linear, so a cell's mean is ``Cy @ P @ Cx.T``
with two small matrices per grid (:func:`cell_operator`): exact, and no full-size map
is ever made. A window's probabilities give the same numbers for every cell whose
support lies inside the window's trusted interior.

**Why windows need a margin, and when they do not pay.** A window sees less context
than the whole image, so its predictions differ near its edges. For ``offline:camvid``
(a U-Net with four poolings, run at 240x176) the mean absolute probability error of a
32x32 window's centre was 0.10 with a 16-pixel margin, 0.014 with 32 and 0.0017 with
48 (6 val frames). With a 48-pixel margin a window around even one cell covers a
third of the working image, so :meth:`fine_cells` runs the dense pass instead
whenever the windows would cost more than :data:`WINDOW_SHARE` of it. Models that
cannot run on windows at all (no ``working_input``/``forward_probabilities``) are
evaluated densely; :attr:`CouplingSource.lazy` says which.
"""

from __future__ import annotations

import functools
import math
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from scipy import ndimage
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.utils.flop_counter import FlopCounterMode

#: The coarse pass's input side, relative to the shipped working side.
COARSE_FACTOR = 4
#: Context margin around a window, in working-resolution pixels (see the module note).
WINDOW_MARGIN = 48
#: Windows are run only while they cost less than this share of the dense pass.
WINDOW_SHARE = 0.6


@dataclass
class EncoderCost:
    """Time, FLOPs and input pixels of every relevance-model call."""

    ms: float = 0.0
    gflops: float = 0.0
    pixels: int = 0
    calls: int = 0
    passes: list[str] = field(default_factory=list)
    count_ms: float = 0.0  # spent counting FLOPs (outside ``ms``; see count_gflops)

    def to_json(self) -> dict[str, Any]:
        return {
            "encoder_ms": round(self.ms, 2),
            "encoder_gflops": round(self.gflops, 4),
            "encoder_pixels": self.pixels,
            "encoder_calls": self.calls,
            "encoder_passes": list(self.passes),
            "flop_count_ms": round(self.count_ms, 2),
        }

    def since(self, before: EncoderCost) -> EncoderCost:
        """The cost added after the snapshot ``before``."""
        return EncoderCost(
            self.ms - before.ms,
            self.gflops - before.gflops,
            self.pixels - before.pixels,
            self.calls - before.calls,
            self.passes[len(before.passes) :],
            self.count_ms - before.count_ms,
        )

    def snapshot(self) -> EncoderCost:
        return EncoderCost(
            self.ms, self.gflops, self.pixels, self.calls, list(self.passes), self.count_ms
        )


def selection_flops(cost: dict[str, Any]) -> int:
    """The relevance model's FLOPs in a selection's ``cost`` report (0 when no model
    pass ran); clustering and other numpy work are not counted."""
    return round(cost.get("encoder_gflops", 0.0) * 1e9)


_GFLOPS: weakref.WeakKeyDictionary[Any, dict[tuple, float]] = weakref.WeakKeyDictionary()


def count_gflops(model: Any, shape: tuple[int, ...], flip: bool) -> float:
    """GFLOPs of ``model.forward_probabilities`` on a batch of ``shape``, counted by
    ``FlopCounterMode`` on fake tensors (no arithmetic is done) once per model and shape.

    Counting is kept out of the timed call: instrumenting a real run makes it two to
    three times slower on this CPU, which would distort every ``encoder_ms``.
    """
    counts = _GFLOPS.setdefault(model, {})
    key = (*shape, flip)
    if key not in counts:
        with FakeTensorMode(allow_non_fake_inputs=True), torch.inference_mode():
            with FlopCounterMode(display=False) as counter:
                model.forward_probabilities(torch.empty(shape), flip)
        counts[key] = counter.get_total_flops() / 1e9
    return counts[key]


def supports_lazy(model: Any) -> bool:
    """Whether ``model`` can run on windows of its working image."""
    return callable(getattr(model, "working_input", None)) and callable(
        getattr(model, "forward_probabilities", None)
    )


def cell_operator(
    starts: np.ndarray, ends: np.ndarray, image_len: int, work_len: int
) -> np.ndarray:
    """(cells, work_len) matrix: row i averages, over image pixels [starts[i], ends[i]),
    the bilinear upsampling (align_corners=False) of a working-resolution line."""
    pixels = np.arange(image_len, dtype=np.float64)
    source = np.clip((pixels + 0.5) * work_len / image_len - 0.5, 0, work_len - 1)
    low = np.floor(source).astype(np.int64)
    high = np.minimum(low + 1, work_len - 1)
    frac = source - low
    weights = np.zeros((image_len, work_len))
    np.add.at(weights, (np.arange(image_len), low), 1 - frac)
    np.add.at(weights, (np.arange(image_len), high), frac)
    cumulative = np.vstack([np.zeros(work_len), np.cumsum(weights, axis=0)])
    sizes = (ends - starts)[:, None]
    return ((cumulative[ends] - cumulative[starts]) / sizes).astype(np.float32)


@dataclass(frozen=True)
class CellSpans:
    """Pixel spans of grid cells: start and end (exclusive) per row and per column."""

    row_starts: np.ndarray
    row_ends: np.ndarray
    col_starts: np.ndarray
    col_ends: np.ndarray
    height: int
    width: int


class CouplingSource:
    """Query coupling of grid cells for one image, computed on demand (module note).

    Args:
        model: a dense class model with ``class_names`` and the lazy interface
            (``working_input``, ``forward_probabilities``, ``stride``, ``scale``,
            ``flip``), or any model with ``relevance(rgb, classes) -> (H, W)``, which
            is evaluated densely (only :meth:`coupling_map` applies to it).
        rgb: the image, (H, W, 3) float in [0, 1].
    """

    def __init__(self, model: Any, rgb: np.ndarray) -> None:
        self.model = model
        self.rgb = rgb
        self.lazy = supports_lazy(model)
        self.cost = EncoderCost()
        self._inputs: dict[str, torch.Tensor] = {}
        self._probabilities: dict[str, np.ndarray] = {}  # "coarse" / "dense": (K, h, w)
        self._window: np.ndarray | None = None  # (K, h, w) probabilities filled by windows
        self._trusted: np.ndarray | None = None  # (h, w) bool: window values usable
        self._direct: dict[tuple[str, ...], np.ndarray] = {}  # maps of non-lazy models

    # -- passes ---------------------------------------------------------------------

    def probabilities(self, kind: str) -> np.ndarray:
        """All class probabilities (K, h, w) of a whole-image pass: "coarse" or "dense"
        (lazy models only)."""
        if kind not in self._probabilities:
            self._probabilities[kind] = self._run_whole(kind)
        return self._probabilities[kind]

    def has_pass(self, kind: str) -> bool:
        return kind in self._probabilities

    def _run_whole(self, kind: str) -> np.ndarray:
        batch = self._input(kind)
        flip = False if kind == "coarse" else None
        return self._forward(batch, flip, kind)[0].numpy()

    def _input(self, kind: str) -> torch.Tensor:
        if kind not in self._inputs:
            scale = self.model.scale / COARSE_FACTOR if kind == "coarse" else None
            self._inputs[kind] = self.model.working_input(self.rgb, scale)
        return self._inputs[kind]

    def _forward(self, batch: torch.Tensor, flip: bool | None, label: str) -> torch.Tensor:
        """Run the model, timed; its FLOPs are counted apart (see :func:`count_gflops`)."""
        flipped = bool(self.model.flip if flip is None else flip)
        started = time.perf_counter()
        with torch.inference_mode():
            output = self.model.forward_probabilities(batch, flip)
        self.cost.ms += (time.perf_counter() - started) * 1000
        counting = time.perf_counter()
        self.cost.gflops += count_gflops(self.model, tuple(batch.shape), flipped)
        self.cost.count_ms += (time.perf_counter() - counting) * 1000
        self.cost.pixels += int(np.prod(batch.shape[-2:])) * batch.shape[0] * (1 + flipped)
        self.cost.calls += 1
        self.cost.passes.append(f"{label} {batch.shape[-2]}x{batch.shape[-1]}")
        return output

    # -- cells ----------------------------------------------------------------------

    def class_indices(self, classes: Sequence[str]) -> list[int]:
        return [list(self.model.class_names).index(name) for name in classes]

    def coarse_cells(self, classes: Sequence[str], spans: CellSpans) -> np.ndarray:
        """(rows, cols) coupling of every cell from the low-resolution pass."""
        return _cell_means(self.probabilities("coarse"), self.class_indices(classes), spans)

    def dense_cells(self, classes: Sequence[str], spans: CellSpans) -> np.ndarray:
        """(rows, cols) coupling of every cell at the shipped settings (the reference)."""
        return _cell_means(self.probabilities("dense"), self.class_indices(classes), spans)

    def windows_may_pay(self, cells: int, spans: CellSpans, margin: int = WINDOW_MARGIN) -> bool:
        """Whether windows around ``cells`` cells could cost less than :data:`WINDOW_SHARE`
        of the dense pass: true when their area, packed into one square with the margin
        on every side, fits. If not, a cascade should not pay for a coarse pass first."""
        if not self.lazy:
            return False
        work_h, work_w = self._input("dense").shape[-2:]
        cell_area = work_h * work_w / ((len(spans.row_starts)) * len(spans.col_starts))
        side = math.sqrt(cells * cell_area) + 2 * margin
        return min(side, work_h) * min(side, work_w) <= WINDOW_SHARE * work_h * work_w

    def fine_cells(
        self,
        classes: Sequence[str],
        spans: CellSpans,
        rows: np.ndarray,
        cols: np.ndarray,
        margin: int = WINDOW_MARGIN,
    ) -> np.ndarray:
        """(N,) coupling of cells (rows[i], cols[i]) at the shipped settings: from
        windows when they are cheaper than :data:`WINDOW_SHARE` of the dense pass,
        else (or for a model without the lazy interface) from the dense pass."""
        rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
        if len(rows) == 0:
            return np.zeros(0, np.float32)
        if "dense" in self._probabilities:
            return self.dense_cells(classes, spans)[rows, cols]
        work_h, work_w = self._input("dense").shape[-2:]
        ops_y, ops_x = _operators(spans, work_h, work_w)
        needed = _support(ops_y[rows], ops_x[cols], work_h, work_w)
        if self._trusted is not None:
            needed &= ~self._trusted
        boxes = _windows(needed, self.model.stride, margin)
        window_area = sum((y1 - y0) * (x1 - x0) for y0, y1, x0, x1 in boxes)
        if window_area > WINDOW_SHARE * work_h * work_w:
            return self.dense_cells(classes, spans)[rows, cols]
        self._run_windows(boxes, margin)
        summed = self._window[self.class_indices(classes)].sum(0).clip(0.0, 1.0)
        return np.einsum("nh,hw,nw->n", ops_y[rows], summed, ops_x[cols]).astype(np.float32)

    def _run_windows(self, boxes: list[tuple[int, int, int, int]], margin: int) -> None:
        batch = self._input("dense")
        work_h, work_w = batch.shape[-2:]
        if self._window is None:
            self._window = np.zeros((len(self.model.class_names), work_h, work_w), np.float32)
            self._trusted = np.zeros((work_h, work_w), bool)
        for y0, y1, x0, x1 in boxes:
            output = self._forward(batch[..., y0:y1, x0:x1], None, "window")[0].numpy()
            # trust the interior only; an edge that is the image's own edge needs no margin
            ty0, tx0 = (y0 + margin if y0 > 0 else 0), (x0 + margin if x0 > 0 else 0)
            ty1 = y1 - margin if y1 < work_h else work_h
            tx1 = x1 - margin if x1 < work_w else work_w
            self._window[:, ty0:ty1, tx0:tx1] = output[:, ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0]
            self._trusted[ty0:ty1, tx0:tx1] = True

    def coupling_map(self, classes: Sequence[str], kind: str | None = None) -> np.ndarray:
        """(H, W) coupling at the image's size: the ``kind`` pass ("dense" or "coarse";
        default: dense if it ran, else coarse), bilinearly upsampled -- one channel,
        the query's, so it is cheap.

        A model without the lazy interface is asked for the map directly (its
        ``relevance(rgb, classes)``), once per class list.
        """
        import cv2  # local: only this path needs it

        height, width = self.rgb.shape[:2]
        if not self.lazy:
            return self._direct_map(tuple(classes))
        kind = kind or ("dense" if "dense" in self._probabilities else "coarse")
        summed = self.probabilities(kind)[self.class_indices(classes)].sum(0).clip(0.0, 1.0)
        return cv2.resize(summed, (width, height), interpolation=cv2.INTER_LINEAR)

    def _direct_map(self, classes: tuple[str, ...]) -> np.ndarray:
        if classes not in self._direct:
            started = time.perf_counter()
            # a black box: its FLOPs can only be counted on the real run (timed with it)
            with torch.inference_mode(), FlopCounterMode(display=False) as counter:
                coupling = np.asarray(self.model.relevance(self.rgb, list(classes)), np.float32)
            self.cost.ms += (time.perf_counter() - started) * 1000
            self.cost.gflops += counter.get_total_flops() / 1e9
            self.cost.calls += 1
            self.cost.pixels += self.rgb.shape[0] * self.rgb.shape[1]
            self.cost.passes.append("dense (the model has no lazy interface)")
            self._direct[classes] = coupling
        return self._direct[classes]


def _cell_means(probabilities: np.ndarray, classes: Sequence[int], spans: CellSpans) -> np.ndarray:
    summed = probabilities[list(classes)].sum(0).clip(0.0, 1.0)
    work_h, work_w = summed.shape
    ops_y, ops_x = _operators(spans, work_h, work_w)
    return (ops_y @ summed @ ops_x.T).astype(np.float32)


def _operators(spans: CellSpans, work_h: int, work_w: int) -> tuple[np.ndarray, np.ndarray]:
    """The row and column :func:`cell_operator` of a grid at a working size (kept: every
    query on an image, and every image of one size, needs the same two)."""
    rows = (tuple(spans.row_starts), tuple(spans.row_ends), spans.height, work_h)
    cols = (tuple(spans.col_starts), tuple(spans.col_ends), spans.width, work_w)
    return _kept_operator(*rows), _kept_operator(*cols)


@functools.lru_cache(maxsize=64)
def _kept_operator(starts: tuple, ends: tuple, image_len: int, work_len: int) -> np.ndarray:
    operator = cell_operator(np.array(starts), np.array(ends), image_len, work_len)
    operator.flags.writeable = False  # shared between callers
    return operator


def _support(ops_y: np.ndarray, ops_x: np.ndarray, height: int, width: int) -> np.ndarray:
    """(h, w) mask of the working pixels the given cells' means read."""
    mask = np.zeros((height, width), bool)
    for weights_y, weights_x in zip(ops_y, ops_x, strict=True):
        ys, xs = np.flatnonzero(weights_y), np.flatnonzero(weights_x)
        mask[ys[0] : ys[-1] + 1, xs[0] : xs[-1] + 1] = True
    return mask


def _windows(needed: np.ndarray, stride: int, margin: int) -> list[tuple[int, int, int, int]]:
    """Stride-aligned boxes (y0, y1, x0, x1) that cover ``needed`` plus ``margin``.

    Windows start on multiples of the network's stride, so its pooling grid lines up
    with the dense pass's; regions whose margins touch share one window.
    """
    if not needed.any():
        return []
    height, width = needed.shape
    blocks_h, blocks_w = -(-height // stride), -(-width // stride)
    padded = np.zeros((blocks_h * stride, blocks_w * stride), bool)
    padded[:height, :width] = needed
    blocks = padded.reshape(blocks_h, stride, blocks_w, stride).any(axis=(1, 3))
    grow = -(-margin // stride)
    grown = ndimage.binary_dilation(blocks, np.ones((2 * grow + 1,) * 2, bool))
    labels, _ = ndimage.label(grown)
    boxes = []
    for rows, cols in ndimage.find_objects(labels):
        boxes.append(
            (
                rows.start * stride,
                min(rows.stop * stride, height),
                cols.start * stride,
                min(cols.stop * stride, width),
            )
        )
    return boxes
