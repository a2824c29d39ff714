"""Lazy cascade: a cheap coarse pass over every cell, the full model only where it counts.

The query coupling comes from a relevance source (``Request.coupling``) instead of a
map computed before the strategy starts:

1. ``coarse()``: every cell's coupling from a low-resolution pass of the model;
2. the ``ceil(oversample * K)`` best cells by that estimate, grown by ``halo``
   cells, are the candidates;
3. ``fine(rows, cols)``: their coupling at the model's shipped settings; the K best
   are kept.

If answering step 3 made the source run the model over the whole image (it does when
windows around the candidates would cost more than that), every cell is then known
exactly and the K best of *all* cells are kept: the result equals ``topk``'s
(``exact()`` returns the full map). A source that can tell beforehand that windows for
``ceil(oversample * K)`` cells cannot pay answers step 1 exactly too, so no coarse pass
is wasted; ``accounting["encoder_passes"]`` shows which passes ran.

Without a source (``allocate`` called on maps alone) the maps' coupling channel is
read: it was computed densely, so this equals ``topk`` (``meta["lazy_note"]`` says so).

Information and salience, when the balancer uses them, are read exactly at every
cell (they are the scorer's known channels); only the coupling comes from the source.

Options:
    oversample: candidates per kept patch (default :data:`OVERSAMPLE`).
    halo: neighbourhood radius added around candidates (default 1).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import torch

from clusterlens.allocate.selection import Request, Selection, all_cells, stage, top, with_halo

#: Candidates per kept patch.
OVERSAMPLE = 2.0


class CellCoupling(Protocol):
    """Query coupling of the finest grid cells, computed on demand."""

    def coarse(self, expected: int) -> np.ndarray:
        """(rows, cols) estimate of every cell's coupling (cheap); ``expected``: how many
        cells the cascade will then ask :meth:`fine` for (a source that cannot answer that
        many more cheaply than densely may answer exactly here)."""

    def fine(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """(N,) coupling of the given cells at full settings."""

    def exact(self) -> np.ndarray | None:
        """(rows, cols) exact coupling of every cell if it has been computed, else None."""


def lazy_cascade(request: Request) -> Selection:
    oversample = float(request.options.get("oversample", OVERSAMPLE))
    halo = int(request.options.get("halo", 1))
    if oversample < 1 or halo < 0:
        raise ValueError(f"need oversample >= 1 and halo >= 0, got {oversample} and {halo}")
    scorer, budget = request.scorer, request.budget
    coupling_channel = _single_query_channel(scorer)
    source = request.coupling or _MapCells(scorer, coupling_channel)
    shape = scorer.level_shape(0)
    rows, cols = all_cells(shape)
    features = scorer.features(0, rows, cols).clone()  # known channels exact
    timings: dict[str, float] = {}
    with stage(timings, "coarse"):
        wanted = math.ceil(oversample * budget)
        features[:, coupling_channel] = torch.from_numpy(source.coarse(wanted).reshape(-1))
        estimate = scorer.combine(features)
        best = top(estimate, wanted)
        cand_rows, cand_cols = with_halo(rows[best], cols[best], shape, halo)
    with stage(timings, "fine"):
        fine = source.fine(cand_rows.numpy(), cand_cols.numpy())
        exact = source.exact()
    with stage(timings, "select"):
        if exact is not None:  # the whole map is known: take the K best of every cell
            cand_rows, cand_cols = rows, cols
            fine = exact.reshape(-1)
        chosen = features[cand_rows * shape[1] + cand_cols]
        chosen[:, coupling_channel] = torch.from_numpy(np.asarray(fine, np.float32))
        scores = scorer.combine(chosen)
        keep = top(scores, budget)
    scorer.scored += len(cand_rows)
    clusters = (
        None
        if request.cell_clusters is None
        else request.cell_clusters[cand_rows[keep], cand_cols[keep]]
    )
    return Selection.finest(cand_rows[keep], cand_cols[keep], scores[keep], clusters, timings)


class _MapCells:
    """No source given: the coupling channel of the maps, which already exists (dense)."""

    def __init__(self, scorer, channel: int) -> None:
        self.values = scorer.mean_levels[0][channel].numpy()

    def coarse(self, expected: int) -> np.ndarray:
        return self.values

    def fine(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        return self.values[rows, cols]

    def exact(self) -> np.ndarray:
        return self.values


def _single_query_channel(scorer) -> int:
    channels = scorer.query_channels
    if len(channels) != 1:
        raise ValueError(
            "lazy-cascade reads one query channel (the coupling) from its source; "
            f"the scorer has {len(channels)} channels that are not known_channels"
        )
    return channels[0]
