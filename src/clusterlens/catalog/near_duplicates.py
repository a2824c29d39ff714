"""Near-duplicate images in a catalog, by embedding, symmetric loss distance and pixels.

Three signals; the first two made scale-free so one threshold works across models and
data sets:

- **embedding**: cosine distance ``1 - cos(a, b)`` between the images' vectors, centred
  on the catalog's mean first. For a YOLO model that stored its bottleneck feature map
  (``features`` kind ``map``) the vector is that whole map, flattened -- a *layout*
  vector: it keeps where things are, which the pooled embedding averages away, and a
  resized copy is letterboxed to the same grid as its original. Other models use their
  ``embeddings`` row (``source="embedding"`` forces it).
- **loss**: the catalog's asymmetric loss distance ``d(i, j)`` (``catalog distances``),
  summed over components and symmetrised as ``max(d(i, j), d(j, i))`` (both images must
  explain each other; ``mean`` is the alternative). Only pairs in the ``distances``
  table have it (all pairs, or each image's embedding k-NN with ``--pairs knn:K``); a
  pair with one direction computed uses it.
- **pixels**: ``1 -`` the normalised cross-correlation of the two images' 32 x 24 grey
  thumbnails (:mod:`clusterlens.catalog.thumbnails`), read from the files the catalog
  recorded (read-only; a file that does not read is left out of this signal, with a
  logged note). Not divided by a local scale: a resized, re-compressed copy correlates
  at ~0.9999 with its original whatever its neighbours, the next frame of a moving
  camera lower. The detector's features are too shift-invariant to tell the two apart.

The embedding and loss distances are each divided by the *local scale* of the pair,
``min(r_a, r_b)``, where ``r`` is an image's distance to its ``REFERENCE_RANK``-th
nearest neighbour (after the self-tuning scale of Zelnik-Manor and Perona; the smaller
of the two, so an image far from everything does not make its pairs look close). A copy
sits far closer to its original than either image's fifth neighbour; in a stretch of
near-identical video frames every frame has close neighbours, so its scale is small too
and only a pair much closer than the rest stands out. A pair is flagged by a signal when
its ratio (the pixel distance itself for ``pixels``) is at most the signal's threshold
(:data:`EMBEDDING_RATIO`, :data:`LOSS_RATIO`, :data:`PIXEL_DISTANCE` by default).
Candidates: each image's ``k`` nearest neighbours by the embedding signal and by the
pixel thumbnails, plus every pair of the ``distances`` table.

Limits: the loss signal sees only what the detector detects (two empty road frames are
"close"); five or more near-identical frames of a stopped camera are one another's
local scale, so they are flagged only when nearly identical (ratio near 0); frames of a
stopped camera are near-identical in pixels too and can pass the pixel threshold; the
layout vector costs ``C x H x W`` floats per image in memory (192 x 10 x 10 at imgsz 320).

Choosing signals: ``signals`` (``catalog issues --duplicate-signals``) names the signals
used, any of :data:`SIGNALS`. A signal left out neither proposes candidate pairs nor
flags them, and costs nothing: without ``pixels`` no image file is read (the slow part on
a large catalog: every file, on every call), without ``loss`` the ``distances`` table is
not read. The cosine is still reported for every pair (the vectors are read anyway).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from clusterlens.catalog.curation import check_top, image_paths, pick_model, unit_embeddings
from clusterlens.catalog.statistics import nearest_neighbours
from clusterlens.catalog.store import CatalogStore, blob_to_array
from clusterlens.catalog.thumbnails import Thumbnails, catalog_thumbnails, pixel_distance

LOG = logging.getLogger(__name__)
SIGNALS = ("embedding", "loss", "pixels")
SYMMETRIES = ("max", "mean")
SOURCES = ("auto", "map", "embedding")
#: The neighbour rank whose distance sets an image's local scale (module docstring).
REFERENCE_RANK = 5
#: Default thresholds on the ratios (pair distance / local scale): the ones
#: benchmarks/catalog_duplicates.py chose on CamVid train (best F1 on injected copies;
#: 0.396 and 0.715, rounded) with the project's CamVid detector, best.pt of its 50-epoch
#: run. Both are weak there on unseen frames (docs/catalog.md, "Benchmark").
EMBEDDING_RATIO = 0.40
LOSS_RATIO = 0.71
#: Default threshold on the pixel distance (1 - thumbnail correlation): the one
#: benchmarks/catalog_duplicates.py chose on CamVid train in its 2026-11-30 run (best F1
#: on injected copies: 1.63e-4, the largest distance of a train copy to its original),
#: rounded up. Unlike the two above it does not depend on the detector.
PIXEL_DISTANCE = 2e-4


@dataclass(frozen=True)
class DuplicatePair:
    """Two images that look like copies of each other (``image_a`` < ``image_b``).

    ``embedding_ratio`` / ``loss_ratio``: the pair's distance over the signal's
    local scale (lower is closer; ``None``: signal not available for the pair, or off).
    ``pixel_distance``: ``1 -`` the correlation of the grey thumbnails (``None``: a file
    did not read, or the pixel signal was off).
    ``agree``: the signals whose ratio is under their threshold. ``score``: the smallest
    ratio / threshold among them (among all available signals when none agrees), so
    the signals compare on one scale and a pair is flagged when its score is at most 1;
    lower is more duplicate-like, and an exact copy scores 0 whatever the other says.
    """

    image_a: int
    image_b: int
    path_a: str
    path_b: str
    cosine: float | None
    embedding_ratio: float | None
    loss_distance: float | None
    loss_ratio: float | None
    pixel_distance: float | None
    agree: tuple[str, ...]
    score: float
    reason: str

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["agree"] = list(self.agree)
        return data


def check_signals(signals: str | Iterable[str]) -> tuple[str, ...]:
    """The signals asked for, in :data:`SIGNALS` order, from names or one comma-separated
    string (``"embedding,pixels"``); repeats are ignored.

    Raises:
        ValueError: an unknown name, or no name at all.
    """
    names = signals.split(",") if isinstance(signals, str) else list(signals)
    asked = {str(name).strip() for name in names} - {""}
    unknown = sorted(asked - set(SIGNALS))
    if unknown:
        raise ValueError(
            f"unknown near-duplicate signal(s) {', '.join(map(repr, unknown))}; choose "
            f"among {', '.join(SIGNALS)} (comma-separated, e.g. 'embedding,loss')"
        )
    if not asked:
        raise ValueError(f"no near-duplicate signal chosen; choose among {', '.join(SIGNALS)}")
    return tuple(name for name in SIGNALS if name in asked)


def symmetric_loss_distances(
    store: CatalogStore, model: str, symmetric: str = "max"
) -> dict[tuple[int, int], float]:
    """``(i, j) -> symmetric loss distance`` with ``i < j``, summed over components.

    Pairs with one direction computed take that direction's value.
    """
    if symmetric not in SYMMETRIES:
        raise ValueError(f"symmetric must be one of {SYMMETRIES}, got {symmetric!r}")
    directed = {
        (int(i), int(j)): float(value)
        for i, j, value in store.query(
            "SELECT i, j, SUM(value) FROM distances WHERE model = ? AND i != j GROUP BY i, j",
            (model,),
        )
    }
    combine = max if symmetric == "max" else (lambda a, b: (a + b) / 2)
    pairs: dict[tuple[int, int], float] = {}
    for (i, j), value in directed.items():
        key = (min(i, j), max(i, j))
        if key in pairs:
            continue
        back = directed.get((j, i))
        pairs[key] = value if back is None else combine(value, back)
    return pairs


def duplicate_vectors(
    store: CatalogStore, model: str, source: str = "auto"
) -> tuple[np.ndarray, np.ndarray, str]:
    """(image ids, centred unit vectors, source used) for the embedding signal.

    ``auto``: the bottleneck map when ``model`` stored one for every image, else the
    ``embeddings`` rows. ``map`` insists on the map.
    """
    if source not in SOURCES:
        raise ValueError(f"source must be one of {SOURCES}, got {source!r}")
    rows = []
    if source != "embedding":
        rows = store.query(
            "SELECT image_id, dtype, shape, data FROM features WHERE model = ? AND kind = 'map' "
            "ORDER BY image_id",
            (model,),
        )
        embedded = store.query("SELECT COUNT(*) FROM embeddings WHERE model = ?", (model,))[0][0]
        shapes = {shape for _, _, shape, _ in rows}
        if source == "map" and (not rows or len(shapes) > 1):
            raise ValueError(f"{model!r} has no bottleneck maps of one shape in {store.path}")
        if len(rows) != embedded or len(shapes) != 1:
            rows = []  # part of the images, or mixed sizes: not comparable, use embeddings
    if rows:
        maps = np.stack([blob_to_array(*row[1:]).astype(np.float32).ravel() for row in rows])
    if rows and not np.ptp(maps, axis=0).any():  # every map the same (e.g. all zeros)
        if source == "map":
            raise ValueError(f"the bottleneck maps of {model!r} are the same for every image")
        rows = []  # they tell no image apart: the pooled embedding may still
    if not rows:
        ids, vectors = unit_embeddings(store, model)
        return ids, vectors, "embedding"
    ids = np.array([row[0] for row in rows], dtype=np.int64)
    maps -= maps.mean(axis=0)
    maps /= np.maximum(np.linalg.norm(maps, axis=1, keepdims=True), 1e-12)
    return ids, np.ascontiguousarray(maps), "map"


def _local_scales(distances_per_image: dict[int, list[float]]) -> dict[int, float]:
    """Image id -> its REFERENCE_RANK-th smallest distance (or its largest known)."""
    return {
        image_id: max(sorted(values)[min(REFERENCE_RANK, len(values)) - 1], 1e-12)
        for image_id, values in distances_per_image.items()
        if values
    }


def duplicate_candidates(
    store: CatalogStore,
    model: str | None = None,
    k: int = 10,
    symmetric: str = "max",
    embedding_ratio: float = EMBEDDING_RATIO,
    loss_ratio: float = LOSS_RATIO,
    source: str = "auto",
    pixel_threshold: float = PIXEL_DISTANCE,
    pixels: bool = True,
    signals: str | Iterable[str] = SIGNALS,
) -> list[DuplicatePair]:
    """Every candidate pair with the chosen signals, unfiltered, closest first.

    Candidates are each image's ``k`` nearest neighbours by the embedding signal and by
    the pixel thumbnails, plus every pair with a loss distance (each only when its
    signal is chosen). Used by :func:`near_duplicates` and by the benchmark, which
    sweeps thresholds over these ratios. ``signals``: any of :data:`SIGNALS` (module
    docstring); ``pixels=False`` is the same as leaving ``"pixels"`` out of them.

    Raises:
        ValueError: no embeddings, fewer than 2 images, ``k`` < 1, a threshold <= 0,
            or an unknown or empty choice of signals.
    """
    chosen = check_signals(signals)
    if not pixels:
        chosen = tuple(name for name in chosen if name != "pixels")
    if not chosen:
        raise ValueError("pixels=False leaves no near-duplicate signal; choose another one")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if not (embedding_ratio > 0 and loss_ratio > 0 and pixel_threshold > 0):
        raise ValueError(
            f"thresholds must be > 0, got embedding {embedding_ratio}, loss {loss_ratio}, "
            f"pixels {pixel_threshold}"
        )
    model = pick_model(store, model)
    ids, vectors, used = duplicate_vectors(store, model, source)
    if len(ids) < 2:
        raise ValueError(f"near-duplicates need at least 2 images, got {len(ids)}")
    sims, rows = nearest_neighbours(vectors, max(k, REFERENCE_RANK))
    row_of = {int(image_id): row for row, image_id in enumerate(ids)}
    rank = min(REFERENCE_RANK, sims.shape[1]) - 1
    embedding_scale = np.maximum(1.0 - sims[:, rank], 1e-12)
    # without predictions every loss distance is the same: the signal would be noise
    usable = "loss" in chosen and loss_signal_note(store, model) is None
    losses = symmetric_loss_distances(store, model, symmetric) if usable else {}
    loss_scale = _local_scales(_per_image(losses))
    thumbs = _thumbnails(store) if "pixels" in chosen else None
    keys = {key for key in losses if key[0] in row_of and key[1] in row_of}
    if "embedding" in chosen:
        keys |= _neighbour_keys(ids, rows[:, :k])
    if thumbs is not None and len(thumbs.ids) > 1:
        keys |= {key for key in _pixel_keys(thumbs, k) if key[0] in row_of and key[1] in row_of}
    thumb_row = thumbs.row_of() if thumbs is not None else {}
    paths = image_paths(store)
    thresholds = {"embedding": embedding_ratio, "loss": loss_ratio, "pixels": pixel_threshold}
    pairs = []
    for a, b in keys:
        ra, rb = row_of[a], row_of[b]
        cosine = float(vectors[ra] @ vectors[rb])
        loss = losses.get((a, b))
        local = float(min(embedding_scale[ra], embedding_scale[rb]))
        ratios = {
            "embedding": max(0.0, 1.0 - cosine) / local if "embedding" in chosen else None,
            "loss": None if loss is None else loss / min(loss_scale[a], loss_scale[b]),
            "pixels": None
            if a not in thumb_row or b not in thumb_row
            else pixel_distance(thumbs.vectors[thumb_row[a]], thumbs.vectors[thumb_row[b]]),
        }
        pairs.append(_pair(a, b, paths, cosine, loss, ratios, thresholds, used))
    # strongest evidence first (an exact copy scores 0 even where the loss disagrees);
    # among equal scores, the pair more signals flag
    return sorted(pairs, key=lambda p: (p.score, -len(p.agree), p.image_a, p.image_b))


def _per_image(losses: dict[tuple[int, int], float]) -> dict[int, list[float]]:
    per_image: dict[int, list[float]] = {}
    for (i, j), value in losses.items():
        per_image.setdefault(i, []).append(value)
        per_image.setdefault(j, []).append(value)
    return per_image


def _neighbour_keys(ids: np.ndarray, rows: np.ndarray) -> set[tuple[int, int]]:
    """(smaller id, larger id) of each row's listed neighbours."""
    return {
        (min(int(ids[r]), int(ids[c])), max(int(ids[r]), int(ids[c])))
        for r in range(len(ids))
        for c in rows[r]
    }


def _thumbnails(store: CatalogStore) -> Thumbnails:
    """The catalog's thumbnails; unreadable files are logged, never raised."""
    thumbs = catalog_thumbnails(store)
    if thumbs.notes:
        LOG.warning(
            "%d image(s) left out of the pixel signal, e.g. %s",
            len(thumbs.notes),
            "; ".join(thumbs.notes[:3]),
        )
    return thumbs


def _pixel_keys(thumbs: Thumbnails, k: int) -> set[tuple[int, int]]:
    _, rows = nearest_neighbours(thumbs.vectors, k)
    return _neighbour_keys(thumbs.ids, rows)


def _pair(a, b, paths, cosine, loss, ratios, thresholds, source) -> DuplicatePair:
    agree = tuple(
        name for name in SIGNALS if ratios[name] is not None and ratios[name] <= thresholds[name]
    )
    available = [name for name in SIGNALS if ratios[name] is not None]
    evidence = [ratios[name] / thresholds[name] for name in agree or available]
    vector = "layout" if source == "map" else "embedding"
    parts = [f"{vector} cosine {cosine:.4f}"]
    if ratios["embedding"] is not None:
        parts[0] += f" ({ratios['embedding']:.2f}x the local scale)"
    if loss is not None:
        parts.append(f"loss distance {loss:.3g} ({ratios['loss']:.2f}x the local scale)")
    if ratios["pixels"] is not None:
        parts.append(f"pixel correlation {1 - ratios['pixels']:.5f}")
    verdict = " and ".join(agree) + (" agree" if len(agree) > 1 else " flags it") if agree else ""
    reason = "; ".join(parts) + (f": {verdict}" if verdict else ": no signal under its threshold")
    return DuplicatePair(
        a, b, paths[a], paths[b], cosine, ratios["embedding"], loss, ratios["loss"],
        ratios["pixels"], agree, float(min(evidence)), reason,
    )  # fmt: skip


def near_duplicates(
    store: CatalogStore,
    model: str | None = None,
    top: int = 10,
    k: int = 10,
    symmetric: str = "max",
    embedding_ratio: float = EMBEDDING_RATIO,
    loss_ratio: float = LOSS_RATIO,
    source: str = "auto",
    pixel_threshold: float = PIXEL_DISTANCE,
    pixels: bool = True,
    signals: str | Iterable[str] = SIGNALS,
) -> list[DuplicatePair]:
    """The ``top`` pairs flagged by at least one chosen signal, lowest score first (ties:
    the pair more signals flag, then the image ids). Arguments: :func:`duplicate_candidates`."""
    top = check_top(top)
    pairs = duplicate_candidates(
        store, model, k, symmetric, embedding_ratio, loss_ratio, source, pixel_threshold,
        pixels, signals,
    )  # fmt: skip
    return [pair for pair in pairs if pair.agree][:top]


def loss_signal_note(store: CatalogStore, model: str) -> str | None:
    """Why the loss signal is unavailable for ``model`` (None when it is available)."""
    if not store.query("SELECT 1 FROM distances WHERE model = ? LIMIT 1", (model,)):
        return (
            f"no loss distances of {model} (run 'clusterlens catalog distances'): "
            "the loss signal is left out"
        )
    if not store.query("SELECT 1 FROM predictions WHERE model = ? LIMIT 1", (model,)):
        return f"{model} has no predictions at all: its loss distances cannot tell images apart"
    return None
