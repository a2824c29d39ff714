"""``allocate``: one entry point over every strategy, with the checks and accounting.

Example:
    >>> import numpy as np
    >>> relevance = np.zeros((64, 64), np.float32)
    >>> relevance[:16, :16] = 1.0
    >>> allocation = allocate(relevance, "mip-cascade", budget=4, grid=8)
    >>> sorted(zip(allocation.rows.tolist(), allocation.cols.tolist()))
    [(0, 0), (0, 1), (1, 0), (1, 1)]
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from clusterlens.allocate.allocation import Allocation
from clusterlens.allocate.baselines import exhaustive_topk, random_cells, uniform
from clusterlens.allocate.bound_cascade import bound_cascade
from clusterlens.allocate.budgets import DEFAULT_RANGE, fixed_budgets, variable_budgets
from clusterlens.allocate.cluster_cascade import cluster_cascade, hierarchical_cluster
from clusterlens.allocate.foveated import foveated
from clusterlens.allocate.grid import PatchGrid
from clusterlens.allocate.lazy_cascade import lazy_cascade
from clusterlens.allocate.mip_cascade import mip_cascade
from clusterlens.allocate.quadtree import quadtree
from clusterlens.allocate.scorer import CellScorer, Combiner
from clusterlens.allocate.selection import Request, Selection

Strategy = Callable[[Request], Selection]

STRATEGIES: dict[str, Strategy] = {
    "uniform": uniform,
    "random": random_cells,
    "topk": exhaustive_topk,
    "mip-cascade": mip_cascade,
    "bound-cascade": bound_cascade,
    "lazy-cascade": lazy_cascade,
    "cluster-cascade": cluster_cascade,
    "hierarchical-cluster": hierarchical_cluster,
    "foveated": foveated,
    "quadtree": quadtree,
}


_CLUSTER_OPTIONS = frozenset({"cluster_level", "summary", "oversample", "prior"})

#: The options each strategy reads (documented in its module); anything else is an error,
#: so a misspelt option never silently falls back to its default.
STRATEGY_OPTIONS: dict[str, frozenset[str]] = {
    "uniform": frozenset(),
    "random": frozenset(),
    "topk": frozenset(),
    "mip-cascade": frozenset(
        {"start_level", "oversample", "halo", "summary", "tie_tolerance", "min_keep"}
    ),
    "bound-cascade": frozenset({"start_level", "tolerance"}),
    "lazy-cascade": frozenset({"oversample", "halo"}),
    "cluster-cascade": _CLUSTER_OPTIONS | {"min_share"},
    "hierarchical-cluster": _CLUSTER_OPTIONS,
    "foveated": frozenset({"sigma", "cluster_level", "summary"}),
    "quadtree": frozenset({"min_variation"}),
}


def list_strategies() -> list[str]:
    return list(STRATEGIES)


def allocate(
    relevance: Any,
    strategy: str = "mip-cascade",
    budget: int = 144,
    *,
    grid: int | tuple[int, int] = 32,
    patch_size: int | None = None,
    clusters: Any = None,
    parents: Any = None,
    gaze: tuple[float, float] | None = None,
    seed: int = 0,
    combine: Combiner | None = None,
    channel_names: Sequence[str] | None = None,
    known_channels: Sequence[str] = (),
    tokens_per_patch: int = 1,
    token_budget: int | None = None,
    token_range: tuple[int, int] = DEFAULT_RANGE,
    query: str | None = None,
    meta: dict[str, Any] | None = None,
    coupling: Any = None,
    **options: Any,
) -> Allocation:
    """Choose which patches to keep, and how many tokens each gets.

    Args:
        relevance: relevance maps at image resolution, (H, W) or (C, H, W) (the ways
            of knowing, combined by ``combine``; default: their mean).
        strategy: one of :func:`list_strategies`.
        budget: patches to keep. 0 keeps none; more than the grid holds keeps all
            (noted in ``meta``).
        grid: cells per side (32 -> 1024 patches) or (rows, cols); ignored when
            ``patch_size`` (pixels) is given.
        clusters: (H, W) integer cluster map, used by cluster strategies.
        parents: (H, W) coarse cluster map, for ``hierarchical-cluster``.
        gaze: (u, v) in [0, 1], for ``foveated``.
        seed: for ``random``.
        known_channels: names (from ``channel_names``) of the query-independent
            channels, e.g. ``("information", "salience")``: strategies that can use
            them read them for free, and only the other channels count as scoring.
        tokens_per_patch: tokens per kept patch with fixed budgets.
        token_budget: if given, budgets vary with relevance in ``token_range``
            under this total; low-scoring patches that do not fit are dropped.
        query, meta: carried into the result.
        coupling: a lazy source of the query channel for ``lazy-cascade``
            (:class:`~clusterlens.allocate.lazy_cascade.CellCoupling`); that channel of
            ``relevance`` is then ignored.
        **options: strategy options (see each strategy's module).
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r}; available: {list_strategies()}")
    _check_options(strategy, options)
    maps = _validated_maps(relevance)
    height, width = maps.shape[1:]
    patch_grid = (
        PatchGrid.from_patch_size(height, width, patch_size)
        if patch_size is not None
        else PatchGrid.from_count(height, width, grid)
    )
    notes = dict(meta or {})
    if patch_size is None and _requested_cells(grid) != patch_grid.shape:
        notes["grid_note"] = (
            f"grid {_requested_cells(grid)} has more cells than the {height}x{width} image has "
            f"pixels; clamped to {patch_grid.rows}x{patch_grid.cols} (at least 1 pixel per cell)"
        )
    kept = _checked_budget(budget, patch_grid.size, notes)
    if strategy == "lazy-cascade" and coupling is None:
        notes["lazy_note"] = "no relevance source: the coupling map was computed densely"
    scorer = CellScorer.from_maps(maps, patch_grid, combine, channel_names, known_channels)
    request = Request(
        scorer=scorer,
        budget=kept,
        cell_clusters=_cell_labels(clusters, patch_grid, "clusters"),
        cell_parents=_cell_labels(parents, patch_grid, "parents"),
        gaze=_checked_gaze(gaze),
        seed=seed,
        options=options,
        coupling=coupling,
    )
    selection = STRATEGIES[strategy](request) if kept > 0 else _empty()
    budgets, count = _token_budgets(selection, tokens_per_patch, token_budget, token_range)
    return Allocation(
        strategy=strategy,
        grid=patch_grid,
        levels=selection.levels[:count].numpy(),
        rows=selection.rows[:count].numpy(),
        cols=selection.cols[:count].numpy(),
        scores=selection.scores[:count].numpy().astype(np.float64),
        budgets=budgets,
        clusters=selection.clusters[:count].numpy(),
        cells_scored=scorer.scored,
        stage_ms=selection.stage_ms,
        tokens_per_patch=tokens_per_patch,
        query=query,
        meta=notes,
    )


#: Options that take text; every other option is a number.
TEXT_OPTIONS = frozenset({"summary"})


def _check_options(strategy: str, options: dict[str, Any]) -> None:
    unknown = sorted(set(options) - STRATEGY_OPTIONS[strategy])
    if unknown:
        accepted = sorted(STRATEGY_OPTIONS[strategy])
        raise ValueError(
            f"strategy {strategy!r} has no option {', '.join(map(repr, unknown))}; "
            f"its options: {', '.join(accepted) if accepted else 'none'}"
        )
    for key, value in options.items():
        numeric = isinstance(value, (int, float, np.integer, np.floating))
        if key not in TEXT_OPTIONS and (isinstance(value, bool) or not numeric):
            raise ValueError(f"option {key!r} of {strategy!r} must be a number, got {value!r}")
        if numeric and not np.isfinite(value):
            raise ValueError(f"option {key!r} of {strategy!r} must be finite, got {value!r}")


def _requested_cells(grid: int | tuple[int, int]) -> tuple[int, int]:
    return (grid, grid) if isinstance(grid, int) else tuple(grid)


def _validated_maps(relevance: Any) -> np.ndarray:
    array = (
        relevance.detach().cpu().numpy()
        if isinstance(relevance, torch.Tensor)
        else np.asarray(relevance)
    )
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or min(array.shape) == 0:
        raise ValueError(f"relevance must be an (H, W) or (C, H, W) map, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.number) or not np.isfinite(array).all():
        raise ValueError("relevance must hold finite numbers")
    return array.astype(np.float32, copy=False)


def _checked_budget(budget: int, cells: int, notes: dict[str, Any]) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)) or budget < 0:
        raise ValueError(f"budget must be a non-negative whole number of patches, got {budget!r}")
    if budget > cells:
        notes["budget_note"] = (
            f"budget {budget} exceeds the grid's {cells} patches; kept all {cells}"
        )
        return cells
    return int(budget)


def _checked_gaze(gaze: tuple[float, float] | None) -> tuple[float, float] | None:
    if gaze is None:
        return None
    u, v = (float(value) for value in gaze)
    if not (0 <= u <= 1 and 0 <= v <= 1):
        raise ValueError(
            f"gaze must lie inside the image, normalised (u, v) in [0, 1], got {(u, v)}"
        )
    return u, v


def _cell_labels(labels: Any, grid: PatchGrid, name: str) -> torch.Tensor | None:
    """The label at each cell's centre pixel, renumbered 0..n-1."""
    if labels is None:
        return None
    array = (
        labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    )
    if array.shape != (grid.height, grid.width) or not np.issubdtype(array.dtype, np.integer):
        raise ValueError(
            f"{name} must be an integer (H, W) label map matching the relevance map "
            f"{grid.height}x{grid.width}, got {array.dtype} {array.shape}"
        )
    centre_y = np.minimum(
        ((np.arange(grid.rows) + 0.5) * grid.height / grid.rows).astype(int), grid.height - 1
    )
    centre_x = np.minimum(
        ((np.arange(grid.cols) + 0.5) * grid.width / grid.cols).astype(int), grid.width - 1
    )
    sampled = array[np.ix_(centre_y, centre_x)]
    _, dense = np.unique(sampled, return_inverse=True)
    return torch.from_numpy(dense.reshape(grid.rows, grid.cols).astype(np.int64))


def _empty() -> Selection:
    none = torch.zeros(0, dtype=torch.long)
    return Selection(none, none, none, torch.zeros(0), none)


def _token_budgets(
    selection: Selection,
    tokens_per_patch: int,
    token_budget: int | None,
    token_range: tuple[int, int],
) -> tuple[np.ndarray, int]:
    count = len(selection.levels)
    if token_budget is None:
        return fixed_budgets(count, tokens_per_patch), count
    budgets = variable_budgets(selection.scores.numpy(), token_budget, *token_range)
    return budgets, len(budgets)
