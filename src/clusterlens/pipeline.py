"""The ``select`` pipeline: query-aware patch selection, from image and question to patches.

image -> query coupling (a model) + information + salience -> clusters (if the
strategy wants them) -> balancer -> allocation strategy -> kept patches.

This composes ``relevance``, ``regions``, ``models`` and ``allocate``; it sits at the
package top level because ``allocate`` must not import ``relevance`` (each capability
folder imports only shared primitives), and a user should not need the CLI for it.
(Not named ``select.py``: that would shadow the standard library's ``select``.)

Queries:
    - a query the model understands: coupling is the model's probability of the
      classes it names, and the balancer weights the question most;
    - an empty query, or one naming none of the model's classes: no coupling; the
      allocation falls back to information and salience, and ``notes`` says why;
    - a query whose classes are absent from the image (all coupling below 0.1):
      allocated as usual, with a note that nothing in the image matches.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from clusterlens.allocate import Allocation, PatchGrid, allocate
from clusterlens.image import ImageInput, image_size, load_image
from clusterlens.relevance import (
    NO_QUERY_WEIGHTS,
    QUERY_FREE_WAYS,
    QUERY_WEIGHTS,
    WAYS,
    FixedBalancer,
    ways_of_knowing,
)

DEFAULT_MODEL = "offline:camvid"
LOW_COUPLING = 0.1
CLUSTER_STRATEGIES = {"cluster-cascade": 64, "hierarchical-cluster": 128, "foveated": 64}
PARENT_CLUSTERS = 16


@dataclass
class Selection:
    """An allocation together with what produced it, for pictures and reports."""

    image: np.ndarray
    allocation: Allocation
    ways: np.ndarray  # (3, H, W) information, salience, coupling
    relevance: np.ndarray  # (H, W) balanced
    clusters: np.ndarray | None
    notes: list[str] = field(default_factory=list)


@functools.lru_cache(maxsize=4)
def _model(name: str) -> Any:
    from clusterlens.models import load_model  # local: keeps `import clusterlens` light

    return load_model(name)


def select_patches(
    image: ImageInput,
    query: str | None,
    strategy: str = "cluster-cascade",
    budget: int = 144,
    *,
    model: str | Any | None = None,
    grid: int | tuple[int, int] = 32,
    patch_size: int | None = None,
    gaze: tuple[float, float] | None = None,
    weights: dict[str, float] | None = None,
    balancer: str | None = None,
    clusters: np.ndarray | None = None,
    cluster_method: str = "fast",
    token_budget: int | None = None,
    seed: int = 0,
    max_side: int | None = 1024,
    **options: Any,
) -> Selection:
    """Choose the patches of ``image`` that matter for ``query``.

    Args:
        image: anything :func:`clusterlens.image.load_image` accepts.
        query: the question or object of interest; None or "" for none.
        strategy, budget, grid, patch_size, gaze, token_budget, seed, options:
            passed to :func:`clusterlens.allocate.allocate`.
        model: the query-coupling model: a registry name (default ``offline:camvid``)
            or a loaded object with ``match_query(text)`` and ``relevance(image, classes)``.
        weights: fixed balancer weights per way of knowing (question-first by default).
        balancer: "adaptive" (the balancer trained with the offline model, shipped in
            the package, picks the weights per image), or "fixed" (``weights``). Default:
            "fixed" when ``weights`` are given, else "adaptive" — on CamVid val it keeps
            patches at least as precise as the fixed weights, and lets cascades match the
            exhaustive top-K more closely (``docs/benchmarks.md``). Without a query the
            weights are always the fixed information/salience ones.
        clusters: an (H, W) cluster map; computed with ``cluster_method`` (default the
            fast coarse-to-fine SLIC of ``clusterlens.regions``) when a cluster strategy
            needs one and none is given; ``hierarchical-cluster`` groups them into 16
            coarse clusters (Ward, on colour and position).
        max_side: images are downscaled to this longer side first (None: never); the
            allocation's pixel boxes still refer to the image as given.
    """
    timings: dict[str, float] = {}
    notes: list[str] = []
    started = time.perf_counter()
    original = image_size(image)
    rgb = load_image(image, max_side=max_side)
    if patch_size is not None:  # patch sizes count pixels of the image as given
        grid = PatchGrid.from_patch_size(*original, patch_size).shape
        patch_size = None
    if model is None and query and query.strip():  # without a query no model is used
        notes.append(f"no model named: using the offline default {DEFAULT_MODEL}")
    coupler = model if model is not None and not isinstance(model, str) else None
    model_name = getattr(coupler, "name", None) or model or DEFAULT_MODEL
    coupling, match = _coupling(rgb, query, coupler or model_name, notes, timings)
    ways = ways_of_knowing(rgb, coupling)
    elapsed = (time.perf_counter() - started) * 1000
    timings["ways_ms"] = (
        elapsed - timings.get("encoder_ms", 0.0) - timings.get("load_model_ms", 0.0)
    )
    balancer = balancer or ("fixed" if weights else "adaptive")
    combiner = _balancer(balancer, weights, ways, coupling is not None, notes)
    cluster_map, parents = _clusters_for(strategy, rgb, clusters, cluster_method, timings)
    allocation = allocate(
        ways,
        strategy,
        budget,
        grid=grid,
        patch_size=patch_size,
        clusters=cluster_map,
        parents=parents,
        gaze=gaze,
        seed=seed,
        combine=combiner,
        channel_names=WAYS,
        known_channels=QUERY_FREE_WAYS,
        token_budget=token_budget,
        query=query or None,
        meta={
            "model": model_name,
            "balancer": balancer if coupling is not None else "fixed",
            "balancer_weights": combiner.report(),
            "query_match": match,
            "preprocess_ms": {k: round(v, 2) for k, v in timings.items()},
            "notes": notes,
        },
        **options,
    )
    if rgb.shape[:2] != original:
        # boxes in pixels of the image as given; the maps were computed on a smaller copy
        allocation.grid = PatchGrid(*original, allocation.grid.rows, allocation.grid.cols)
        allocation.meta["processed_size"] = list(rgb.shape[:2])
    relevance = np.tensordot(np.array([combiner.weights[w] for w in WAYS]), ways, axes=1)
    return Selection(rgb, allocation, ways, relevance.astype(np.float32), cluster_map, notes)


def _balancer(
    kind: str, weights: dict[str, float] | None, ways: np.ndarray, has_query: bool, notes: list[str]
) -> FixedBalancer:
    if kind not in ("fixed", "adaptive"):
        raise ValueError(f"balancer must be 'fixed' or 'adaptive', got {kind!r}")
    if not has_query:
        return FixedBalancer(NO_QUERY_WEIGHTS)
    if kind == "adaptive":
        from clusterlens.relevance.adaptive import AdaptiveBalancer, default_balancer_path

        return AdaptiveBalancer.load(default_balancer_path()).for_image(ways)
    return FixedBalancer(weights or QUERY_WEIGHTS)


def _coupling(
    rgb: np.ndarray,
    query: str | None,
    model: str | Any,
    notes: list[str],
    timings: dict[str, float],
) -> tuple[np.ndarray | None, dict[str, Any] | None]:
    if query is None or not query.strip():
        notes.append("no query: patches chosen by information and salience only")
        return None, None
    if isinstance(model, str):
        started = time.perf_counter()
        model = _model(model)
        timings["load_model_ms"] = (time.perf_counter() - started) * 1000
    match = model.match_query(query)
    summary = {
        "matched": match.matched,
        "classes": list(match.classes),
        "best": list(match.best),
        "threshold": match.threshold,
    }
    if not match.matched:
        best, score = match.best
        notes.append(
            f"query {query!r} names none of the model's classes (best {best!r} at "
            f"{score:.2f} < {match.threshold:.2f}): patches chosen by information and salience only"
        )
        return None, summary
    started = time.perf_counter()
    with torch.inference_mode():
        coupling = model.relevance(rgb, list(match.classes))
    timings["encoder_ms"] = (time.perf_counter() - started) * 1000
    peak = float(coupling.max())
    if peak < LOW_COUPLING:
        notes.append(
            f"nothing in the image matches {', '.join(match.classes)} (max relevance {peak:.2f})"
        )
    return coupling, summary


def _clusters_for(
    strategy: str, rgb: np.ndarray, given: np.ndarray | None, method: str, timings: dict[str, float]
) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Cluster maps for the strategies that use them; fine and grouped for the hierarchy."""
    if strategy not in CLUSTER_STRATEGIES:
        return given, None
    from clusterlens.regions import cluster_image  # local: only cluster strategies need it
    from clusterlens.regions.hierarchy import group_clusters

    started = time.perf_counter()
    labels = (
        given
        if given is not None
        else cluster_image(rgb, method, CLUSTER_STRATEGIES[strategy]).labels
    )
    parents = None
    if strategy == "hierarchical-cluster":
        parents = group_clusters(labels, rgb, max_clusters=PARENT_CLUSTERS).coarse.labels
    timings["clusters_ms"] = (time.perf_counter() - started) * 1000
    return labels, parents
