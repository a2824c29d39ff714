"""Rankings that find problems in a catalog: hard images and outliers.

Everything reads a :class:`~clusterlens.catalog.store.CatalogStore` (open it with
``readonly=True``: nothing here writes) and returns plain dataclasses, each with a
one-line ``reason`` and ``to_json()``. Near-duplicates live in
:mod:`clusterlens.catalog.near_duplicates`, subset selection in
:mod:`clusterlens.catalog.selection`; the readers below are shared by all three.

- :func:`hard_images` -- images whose loss components are high or whose detection
  metrics are low, as a robust z-score (median / MAD) against the whole catalog; the
  component furthest off names the reason.
- :func:`outliers` -- images far from their k nearest neighbours in embedding space
  (mean cosine distance to them, as a robust z-score), with those neighbours named.

Example:
    >>> from clusterlens.catalog.statistics import nearest_neighbours, robust_z
from clusterlens.catalog.store import CatalogStore
    >>> with CatalogStore("catalog.db", readonly=True) as store:  # doctest: +SKIP
    ...     for item in hard_images(store, top=3):
    ...         print(item.path, item.reason)
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.catalog.statistics import nearest_neighbours, robust_z
from clusterlens.catalog.store import CatalogStore

#: Loss components (higher is worse) and detection metrics (lower is worse) a hardness
#: score looks at; a metric's z-score is negated so that "off" is always positive.
LOSS_COLUMNS = ("box", "cls", "dfl", "seg")
METRIC_COLUMNS = ("mean_iou", "hit_freq", "dice")


# ---------------------------------------------------------------------- shared readers


def pick_model(store: CatalogStore, model: str | None) -> str:
    """``model`` if the catalog has its embeddings, else the only sensible default.

    Default: the only YOLO model, or failing that the only model of any kind.

    Raises:
        ValueError: no embeddings at all, an unknown model, or several candidates.
    """
    models = store.models()
    if not models:
        raise ValueError(
            f"catalog {store.path} has no embeddings; run 'clusterlens catalog build' first"
        )
    if model is not None:
        if model not in models:
            raise ValueError(f"no embeddings of {model!r} in {store.path}; models: {models}")
        return model
    yolo = [name for name in store.yolo_models() if name in models]
    candidates = yolo if len(yolo) == 1 else models
    if len(candidates) != 1:
        raise ValueError(f"{store.path} has models {models}; choose one with --model")
    return candidates[0]


def image_paths(store: CatalogStore) -> dict[int, str]:
    return {int(i): path for i, path in store.query("SELECT id, path FROM images")}


def unit_embeddings(
    store: CatalogStore, model: str, centre: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, L2-normalised float32 embeddings): inner product = cosine similarity.

    ``centre``: subtract the catalog's mean embedding first. A YOLO embedding (pooled
    activations, all positive) shares a large component across images -- raw cosines of
    street scenes all sit within 1e-3 of 1 -- so the cosine is taken between what makes
    each image differ from the catalog's average image.
    """
    ids, vectors = store.embeddings(model)
    vectors = vectors.astype(np.float64)
    if centre and len(vectors) > 1:
        vectors = vectors - vectors.mean(axis=0)
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return ids, np.ascontiguousarray(vectors, dtype=np.float32)


def check_top(top: int) -> int:
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"--top must be a positive whole number, got {top!r}")
    return int(top)


# ---------------------------------------------------------------------- hard images


@dataclass(frozen=True)
class HardImage:
    """An image the model finds hard: ``score`` is the largest robust z of its signals.

    ``signals`` maps each loss component / metric to ``(value, z)``; a metric's z is
    negated (low IoU -> positive z), so the largest z is always the worst signal.
    """

    image_id: int
    path: str
    score: float
    component: str
    signals: dict[str, tuple[float, float]]
    reason: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def hardness_table(store: CatalogStore, model: str) -> dict[int, HardImage]:
    """A :class:`HardImage` for every image with a loss row of ``model``.

    Raises:
        ValueError: ``model`` has no loss rows (not a YOLO model, or no labels).
    """
    columns = ", ".join(f"l.{c}" for c in LOSS_COLUMNS) + ", "
    columns += ", ".join(f"m.{c}" for c in METRIC_COLUMNS)
    rows = store.query(
        f"SELECT l.image_id, {columns} FROM losses l LEFT JOIN metrics m "
        "ON m.image_id = l.image_id AND m.model = l.model WHERE l.model = ? ORDER BY l.image_id",
        (model,),
    )
    if not rows:
        raise ValueError(
            f"no losses of {model!r} in {store.path}: hard images need a yolo: model built "
            "on labelled images"
        )
    ids = [int(row[0]) for row in rows]
    values = np.array([[np.nan if v is None else v for v in row[1:]] for row in rows], float)
    names = LOSS_COLUMNS + METRIC_COLUMNS
    signs = np.array([1.0] * len(LOSS_COLUMNS) + [-1.0] * len(METRIC_COLUMNS))
    zs = np.stack([robust_z(values[:, col]) for col in range(len(names))], axis=1) * signs
    paths = image_paths(store)
    return {
        image_id: _hard_image(image_id, paths[image_id], names, values[row], zs[row])
        for row, image_id in enumerate(ids)
    }


def _hard_image(image_id: int, path: str, names, values, zs) -> HardImage:
    signals = {
        name: (float(value), float(z))
        for name, value, z in zip(names, values, zs, strict=True)
        if np.isfinite(z)
    }
    worst = max(signals, key=lambda name: (signals[name][1], name))
    value, z = signals[worst]
    direction = "high" if worst in LOSS_COLUMNS else "low"
    kind = "loss" if worst in LOSS_COLUMNS else ""
    reason = f"{direction} {worst} {kind}".rstrip() + f" {value:.3g} (robust z {z:+.1f})"
    others = [f"{n} z {signals[n][1]:+.1f}" for n in signals if n != worst and signals[n][1] >= 2]
    if others:
        reason += "; also " + ", ".join(others)
    return HardImage(image_id, path, float(z), worst, signals, reason)


def hard_images(store: CatalogStore, model: str | None = None, top: int = 10) -> list[HardImage]:
    """The ``top`` hardest images of ``model``, hardest first (ties: smaller id first)."""
    top = check_top(top)
    table = hardness_table(store, pick_model(store, model))
    return sorted(table.values(), key=lambda item: (-item.score, item.image_id))[:top]


# ---------------------------------------------------------------------- outliers


@dataclass(frozen=True)
class Outlier:
    """An image far from its nearest neighbours: ``distance`` is its mean cosine distance
    to them, ``score`` the robust z of that distance over the catalog."""

    image_id: int
    path: str
    score: float
    distance: float
    neighbours: tuple[tuple[int, str, float], ...]
    reason: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["neighbours"] = [
            {"image_id": i, "path": p, "distance": d} for i, p, d in self.neighbours
        ]
        return data


def outliers(
    store: CatalogStore, model: str | None = None, top: int = 10, k: int = 5
) -> list[Outlier]:
    """The ``top`` images furthest from their ``k`` nearest neighbours, furthest first.

    Raises:
        ValueError: fewer than 3 images, ``k`` < 1, or no embeddings of ``model``.
    """
    top = check_top(top)
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    ids, vectors = unit_embeddings(store, pick_model(store, model))
    if len(ids) < 3:
        raise ValueError(f"outliers need at least 3 images with embeddings, got {len(ids)}")
    sims, rows = nearest_neighbours(vectors, k)
    distance = (1.0 - sims).mean(axis=1)
    z = robust_z(distance)
    paths = image_paths(store)
    order = sorted(range(len(ids)), key=lambda row: (-distance[row], ids[row]))[:top]
    found = []
    for row in order:
        near = tuple(
            (int(ids[col]), paths[int(ids[col])], float(1.0 - sim))
            for col, sim in zip(rows[row], sims[row], strict=True)
        )
        reason = (
            f"mean cosine distance {distance[row]:.3g} to its {len(near)} nearest neighbours "
            f"(robust z {z[row]:+.1f}; median {np.median(distance):.3g}); nearest "
            f"{Path(near[0][1]).name} at {near[0][2]:.3g}"
        )
        found.append(
            Outlier(int(ids[row]), paths[int(ids[row])], float(z[row]), float(distance[row]),
                    near, reason)
        )  # fmt: skip
    return found
