"""Video strategies: which (frame, cell) cells to keep under a clip-level budget.

- ``temporal-cascade``: the model's coarse pass (a quarter of its working side, about
  4% of a dense pass's FLOPs) on every ``interval``-th frame (default 8) (the keyframes, plus the
  last frame); each frame's estimate is the larger of its two neighbouring keyframes'
  (spread by ``halo`` cells, since the camera moves in between); the
  ``ceil(oversample * K)`` best estimated cells are the candidates. Only the keyframes
  that bound a candidate's frame get the dense pass; a frame between two such
  keyframes gets their dense maps carried to it along optical flow and blended by
  temporal distance. The K best cells of the frames so scored are kept.
- ``exhaustive``: every frame's dense pass, the K best (frame, cell) of the clip (the
  reference the cascade is judged against).
- ``per-frame``: every frame's dense pass, the budget split evenly, each frame's best.
- ``uniform``: the budget split evenly, each frame's cells on a regular lattice that
  shifts from frame to frame (no model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
from scipy import ndimage

from clusterlens.allocate import PatchGrid
from clusterlens.video.coupling import ClipCoupling
from clusterlens.video.warp import blend, carry

VIDEO_STRATEGIES = ("temporal-cascade", "exhaustive", "per-frame", "uniform")
#: Keyframe spacing of the temporal cascade. Seed 02 v0.3 scans every 4th frame; but
#: the dense passes on keyframes then cost 30% of per-frame dense selection's FLOPs by
#: themselves (benchmarks/video.py: 24-frame CamVid virtual-camera clips), while every
#: 8th frame costs 17% at the same fidelity to exhaustive top-K (0.999 either way).
INTERVAL = 8
#: Candidate cells per kept cell.
OVERSAMPLE = 2.0


@dataclass
class Chosen:
    """Kept cells of a strategy, best first where scored, and what it wants reported."""

    frames: np.ndarray
    rows: np.ndarray
    cols: np.ndarray
    scores: np.ndarray
    meta: dict[str, Any] = field(default_factory=dict)


def split_budget(budget: int, frames: int) -> np.ndarray:
    """(frames,) an even split of ``budget``; the remainder goes to the first frames."""
    share = np.full(frames, budget // frames, np.int64)
    share[: budget % frames] += 1
    return share


def top_cells(scores: np.ndarray, count: int) -> Chosen:
    """The ``count`` best finite entries of a (frames, rows, cols) array, best first
    (ties broken by position, so results are deterministic)."""
    flat = scores.reshape(-1)
    finite = np.flatnonzero(np.isfinite(flat))
    order = finite[np.argsort(-flat[finite], kind="stable")[:count]]
    frames, rows, cols = np.unravel_index(order, scores.shape)
    return Chosen(frames, rows, cols, flat[order].astype(np.float32))


def exhaustive(clip: ClipCoupling, budget: int) -> Chosen:
    return top_cells(_all_dense(clip), budget)


def per_frame(clip: ClipCoupling, budget: int) -> Chosen:
    dense = _all_dense(clip)
    picks = [
        top_cells(dense[t : t + 1], int(n)) for t, n in enumerate(split_budget(budget, len(dense)))
    ]
    return Chosen(
        np.concatenate([np.full(len(p.frames), t) for t, p in enumerate(picks)]).astype(np.int64),
        np.concatenate([p.rows for p in picks]),
        np.concatenate([p.cols for p in picks]),
        np.concatenate([p.scores for p in picks]),
    )


def uniform(grid: PatchGrid, frame_count: int, budget: int) -> Chosen:
    """Each frame's share on a lattice of the grid's aspect, offset by a fraction of a
    lattice step that changes with the frame, so that over time every cell is visited."""
    frames, rows, cols = [], [], []
    for t, count in enumerate(split_budget(budget, frame_count)):
        r, c = _lattice(grid.rows, grid.cols, int(count), phase=(t * 0.618) % 1.0)
        frames.append(np.full(len(r), t))
        rows.append(r)
        cols.append(c)
    frames_all = np.concatenate(frames).astype(np.int64)
    return Chosen(
        frames_all,
        np.concatenate(rows),
        np.concatenate(cols),
        np.full(len(frames_all), np.nan, np.float32),
    )


def _lattice(rows: int, cols: int, count: int, phase: float) -> tuple[np.ndarray, np.ndarray]:
    if count <= 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    if count >= rows * cols:
        r, c = np.divmod(np.arange(rows * cols), cols)
        return r, c
    lattice_rows = min(rows, max(1, round(math.sqrt(count * rows / cols))))
    lattice_cols = min(cols, math.ceil(count / lattice_rows))
    ys = np.floor((np.arange(lattice_rows) + phase) * rows / lattice_rows).astype(np.int64)
    xs = np.floor((np.arange(lattice_cols) + phase) * cols / lattice_cols).astype(np.int64)
    r, c = np.meshgrid(ys, xs, indexing="ij")
    cells = np.unique(r.reshape(-1) * cols + c.reshape(-1))[:count]
    return np.divmod(cells, cols)


def _all_dense(clip: ClipCoupling) -> np.ndarray:
    frames = len(clip.video)
    dense = np.empty((frames, clip.grid.rows, clip.grid.cols), np.float32)
    for index, context in clip.video.contexts(range(frames), clip.ledger):
        dense[index] = clip.dense_cells(context)
    return dense


def temporal_cascade(
    clip: ClipCoupling,
    budget: int,
    interval: int = INTERVAL,
    oversample: float = OVERSAMPLE,
    halo: int = 1,
) -> Chosen:
    if interval < 1 or oversample < 1 or halo < 0:
        raise ValueError(
            f"need interval >= 1, oversample >= 1, halo >= 0; got {interval}, {oversample}, {halo}"
        )
    frames = len(clip.video)
    keys = sorted(set(range(0, frames, interval)) | {frames - 1})
    estimate = _coarse_estimate(clip, keys, frames, halo)
    wanted = min(math.ceil(oversample * budget), estimate.size)
    candidate_frames = np.unique(top_cells(estimate, wanted).frames)
    dense_keys, spans = _bracketing(keys, candidate_frames)
    scores = np.full(estimate.shape, -np.inf, np.float32)
    maps = {}
    for index, context in clip.video.contexts(dense_keys, clip.ledger):
        scores[index] = clip.dense_cells(context)
        maps[index] = clip.working_map(context, "dense")
    for first, last in spans:
        scores[first + 1 : last] = _carried_cells(clip, maps[first], maps[last], first, last)
    chosen = top_cells(scores, budget)
    chosen.meta = {
        "interval": interval,
        "oversample": oversample,
        "halo": halo,
        "keyframes": len(keys),
        "dense_keyframes": len(dense_keys),
        "frames_scored": int(np.isfinite(scores[:, 0, 0]).sum()),
        "candidate_frames": len(candidate_frames),
    }
    return chosen


def _coarse_estimate(clip: ClipCoupling, keys: list[int], frames: int, halo: int) -> np.ndarray:
    """(frames, rows, cols): each frame's larger neighbouring-keyframe coarse estimate."""
    coarse = {}
    for index, context in clip.video.contexts(keys, clip.ledger):
        cells = clip.coarse_cells(context)
        # the camera moves between keyframes: a cell's estimate is its neighbourhood's best
        coarse[index] = ndimage.maximum_filter(cells, size=2 * halo + 1) if halo else cells
    estimate = np.empty((frames, clip.grid.rows, clip.grid.cols), np.float32)
    for first, last in zip(keys[:-1], keys[1:], strict=True):
        estimate[first : last + 1] = np.maximum(coarse[first], coarse[last])
    if len(keys) == 1:
        estimate[0] = coarse[keys[0]]
    return estimate


def _bracketing(keys: list[int], frames: np.ndarray) -> tuple[list[int], list[tuple[int, int]]]:
    """The keyframes that bound the given frames, and the spans (first, last) of
    keyframes with at least one of the frames strictly between them."""
    dense, spans = set(), set()
    positions = np.searchsorted(keys, frames)
    for frame, position in zip(frames.tolist(), positions.tolist(), strict=True):
        if keys[position] == frame:
            dense.add(frame)
            continue
        first, last = keys[position - 1], keys[position]
        dense.update((first, last))
        spans.add((first, last))
    return sorted(dense), sorted(spans)


def _carried_cells(
    clip: ClipCoupling, first_map: np.ndarray, last_map: np.ndarray, first: int, last: int
) -> np.ndarray:
    """(last - first - 1, rows, cols): the two keyframes' maps carried to the frames
    between them along the chain of frame-to-frame flows, blended by distance."""
    video, ledger = clip.video, clip.ledger
    height, width = video.grays([first], ledger)[first].shape
    size = (width, height)
    forward = [(cv2.resize(first_map, size)[None], np.ones((height, width), np.float32))]
    for t in range(first + 1, last):
        forward.append(carry(*forward[-1], video.flow(t, t - 1, ledger)))
    backward = [(cv2.resize(last_map, size)[None], np.ones((height, width), np.float32))]
    for t in range(last - 1, first, -1):
        backward.append(carry(*backward[-1], video.flow(t, t + 1, ledger)))
    backward.reverse()  # backward[i] now belongs to frame first + 1 + i
    cells = []
    for t in range(first + 1, last):
        (ahead, ahead_valid), (behind, behind_valid) = forward[t - first], backward[t - first - 1]
        blended = blend([ahead, behind], [ahead_valid, behind_valid], [last - t, t - first])
        cells.append(clip.cells_of(blended[0]))
    return np.stack(cells)
