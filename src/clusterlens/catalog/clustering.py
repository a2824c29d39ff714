"""Cluster the catalog's images into a ``clusters`` table.

- ``by="embedding"``: faiss k-means on the L2-normalised embeddings of one model.
- ``by="distance"``: the asymmetric loss distance of a YOLO model, summed over its
  components and symmetrised, ``D = (dist + dist.T) / 2``; then scikit-learn's
  agglomerative clustering (average linkage on the precomputed ``D``) or spectral
  clustering (affinity ``exp(-D / median(D))``). Pairs never computed (``knn:K``) get
  the largest distance seen (affinity 0).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from clusterlens.catalog.store import CatalogStore

BY = ("embedding", "distance")
DISTANCE_METHODS = ("agglomerative", "spectral")


def kmeans_labels(vectors: np.ndarray, k: int, seed: int = 0) -> np.ndarray:
    """faiss k-means assignments of the rows of ``vectors`` (L2-normalised first)."""
    import faiss

    data = np.ascontiguousarray(vectors, dtype=np.float32)
    data /= np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    kmeans = faiss.Kmeans(
        data.shape[1], k, niter=25, seed=seed, min_points_per_centroid=1, verbose=False
    )
    kmeans.train(data)
    return kmeans.index.search(data, 1)[1].ravel().astype(np.int64)


def distance_matrix(store: CatalogStore, model: str) -> tuple[np.ndarray, np.ndarray]:
    """(image ids, symmetrised (N, N) loss distance summed over components)."""
    rows = store.query(
        "SELECT i, j, SUM(value) FROM distances WHERE model = ? GROUP BY i, j", (model,)
    )
    if not rows:
        raise ValueError(
            f"no distances for {model!r} in {store.path}; run 'catalog distances' first"
        )
    ids = np.array(sorted({r[0] for r in rows} | {r[1] for r in rows}), dtype=np.int64)
    position = {int(image_id): index for index, image_id in enumerate(ids)}
    dist = np.full((len(ids), len(ids)), np.nan)
    for i, j, value in rows:
        dist[position[i], position[j]] = value
    dist = np.where(np.isnan(dist), dist.T, dist)  # one direction known: use it both ways
    dist = np.where(np.isnan(dist), np.nanmax(dist), dist)
    symmetric = (dist + dist.T) / 2
    np.fill_diagonal(symmetric, 0.0)
    return ids, symmetric


def distance_labels(distance: np.ndarray, k: int, method: str, seed: int = 0) -> np.ndarray:
    """Agglomerative or spectral clustering of a precomputed symmetric distance."""
    if method == "agglomerative":
        from sklearn.cluster import AgglomerativeClustering

        model = AgglomerativeClustering(n_clusters=k, metric="precomputed", linkage="average")
        return model.fit_predict(distance).astype(np.int64)
    if method == "spectral":
        from sklearn.cluster import SpectralClustering

        scale = np.median(distance[distance > 0]) if (distance > 0).any() else 1.0
        affinity = np.exp(-distance / scale)
        model = SpectralClustering(n_clusters=k, affinity="precomputed", random_state=seed)
        return model.fit_predict(affinity).astype(np.int64)
    raise ValueError(f"--method must be one of {DISTANCE_METHODS}, got {method!r}")


def cluster_catalog(
    db: str | Path,
    k: int,
    by: str = "embedding",
    model: str | None = None,
    method: str = "agglomerative",
    seed: int = 0,
) -> dict[str, object]:
    """Cluster and write the ``clusters`` table; returns method, model, k and sizes.

    Args:
        db: the catalog file.
        k: number of clusters (2 <= k <= number of images).
        by: ``"embedding"`` or ``"distance"``.
        model: whose embeddings / distances (default: the only candidate).
        method: for ``by="distance"``: ``"agglomerative"`` or ``"spectral"``.
        seed: k-means / spectral seed.

    Raises:
        ValueError: bad arguments, or the data the method needs is missing.
    """
    if by not in BY:
        raise ValueError(f"--by must be one of {BY}, got {by!r}")
    with CatalogStore(db, create=False) as store:
        candidates = store.models() if by == "embedding" else store.yolo_models()
        if model is None:
            if len(candidates) != 1:
                raise ValueError(f"{store.path} has models {candidates}; choose one with --model")
            model = candidates[0]
        if by == "embedding":
            ids, vectors = store.embeddings(model)
            _check_k(k, len(ids))
            labels, method_name = kmeans_labels(vectors, k, seed), "kmeans"
        else:
            ids, distance = distance_matrix(store, model)
            _check_k(k, len(ids))
            labels, method_name = distance_labels(distance, k, method, seed), method
        with store.transaction() as connection:
            connection.execute(
                "DELETE FROM clusters WHERE method = ? AND model = ? AND k = ?",
                (method_name, model, k),
            )
            connection.executemany(
                "INSERT INTO clusters (method, model, k, image_id, cluster) VALUES (?, ?, ?, ?, ?)",
                [(method_name, model, k, int(i), int(c)) for i, c in zip(ids, labels, strict=True)],
            )
    sizes = Counter(labels.tolist())
    return {"method": method_name, "model": model, "k": k, "sizes": [sizes[c] for c in range(k)]}


def _check_k(k: int, count: int) -> None:
    if not 2 <= k <= count:
        raise ValueError(f"--k must be between 2 and the number of images ({count}), got {k}")
