"""Encode a data set and cluster it with k-means: the neighbourhoods locality training uses.

:func:`encode_and_cluster` writes, into one folder:

- ``cluster_centers.npy``: (K, D) k-means centroids in the encoder's space;
- ``assignments.csv``: ``sample_id,cluster`` for every training sample;
- ``latents.npy``: (N, D) encoded training samples, rows in ``assignments.csv`` order;
- ``summary.json``: data spec, encoder, backend, cluster sizes and inertia.

k-means runs on faiss when it is installed and falls back to scikit-learn otherwise.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from clusterlens.flow.data import FlowDataset
from clusterlens.flow.encoders import make_encoder

BACKENDS = ("auto", "faiss", "sklearn")
FILES = ("cluster_centers.npy", "assignments.csv", "latents.npy", "summary.json")


@dataclass
class KMeansResult:
    """Centroids (K, D), one label per row (N,), inertia (sum of squared distances)."""

    centers: np.ndarray
    labels: np.ndarray
    inertia: float
    backend: str


def kmeans(
    features: np.ndarray, n_clusters: int, *, seed: int = 0, backend: str = "auto", n_iter: int = 25
) -> KMeansResult:
    """Cluster rows of ``features`` into ``n_clusters`` groups.

    Args:
        features: (N, D) array.
        n_clusters: K, between 1 and N.
        seed: Seed of the centroid initialisation.
        backend: ``faiss``, ``sklearn`` or ``auto`` (faiss if importable).
        n_iter: Lloyd iterations.

    Returns:
        The :class:`KMeansResult`.
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown k-means backend {backend!r}; accepted: {', '.join(BACKENDS)}")
    features = np.ascontiguousarray(features, dtype=np.float32)
    if features.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {features.shape}")
    if not 1 <= n_clusters <= len(features):
        raise ValueError(f"n_clusters must be in [1, {len(features)}], got {n_clusters}")
    if backend in ("auto", "faiss"):
        try:
            return _faiss_kmeans(features, n_clusters, seed, n_iter)
        except ImportError:
            if backend == "faiss":
                raise
    return _sklearn_kmeans(features, n_clusters, seed, n_iter)


def _faiss_kmeans(features: np.ndarray, k: int, seed: int, n_iter: int) -> KMeansResult:
    import faiss

    model = faiss.Kmeans(features.shape[1], k, niter=n_iter, seed=seed, verbose=False)
    # faiss subsamples to 256 points per centroid by default; use every point instead.
    model.max_points_per_centroid = max(256, -(-len(features) // k))
    model.train(features)
    distances, labels = model.index.search(features, 1)
    return KMeansResult(
        model.centroids.copy(), labels[:, 0].astype(np.int64), float(distances.sum()), "faiss"
    )


def _sklearn_kmeans(features: np.ndarray, k: int, seed: int, n_iter: int) -> KMeansResult:
    from sklearn.cluster import KMeans

    model = KMeans(n_clusters=k, n_init=1, max_iter=n_iter, random_state=seed).fit(features)
    return KMeansResult(
        model.cluster_centers_.astype(np.float32),
        model.labels_.astype(np.int64),
        float(model.inertia_),
        "sklearn",
    )


def encode_and_cluster(
    dataset: FlowDataset,
    encoder: str,
    n_clusters: int,
    out_dir: str | Path,
    *,
    seed: int = 0,
    backend: str = "auto",
    device: str = "cpu",
) -> dict:
    """Encode the training split, run k-means, and write the four cluster files.

    Args:
        dataset: The data set whose training samples are clustered.
        encoder: ``pixels``, ``pca:K`` or ``vae:NAME`` (see :mod:`clusterlens.flow.encoders`).
        n_clusters: K.
        out_dir: Folder to write into (created).
        seed: k-means seed.
        backend: k-means backend (``auto``, ``faiss``, ``sklearn``).
        device: Torch device for the VAE.

    Returns:
        The summary written to ``summary.json``.
    """
    features = make_encoder(encoder, device=device)(dataset.train)
    result = kmeans(features, n_clusters, seed=seed, backend=backend)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "cluster_centers.npy", result.centers)
    np.save(out / "latents.npy", features)
    with open(out / "assignments.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["sample_id", "cluster"])
        writer.writerows(zip(dataset.ids, result.labels.tolist(), strict=True))
    sizes = np.bincount(result.labels, minlength=n_clusters)
    summary = {
        "data": dataset.name,
        "data_meta": dataset.meta,
        "encoder": encoder,
        "backend": result.backend,
        "n_samples": len(features),
        "latent_dim": int(features.shape[1]),
        "n_clusters": n_clusters,
        "inertia": result.inertia,
        "cluster_sizes": sizes.tolist(),
        "empty_clusters": int((sizes == 0).sum()),
        "singleton_clusters": int((sizes == 1).sum()),
        "seed": seed,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


@dataclass
class ClusterAssignments:
    """Cluster of each training sample, read back from an ``encode-cluster`` folder."""

    by_id: dict[str, int]
    centers: np.ndarray
    summary: dict

    def labels_for(self, ids: list[str]) -> np.ndarray:
        """Cluster of each id, in order; raises naming the first id that has none."""
        try:
            return np.array([self.by_id[sample_id] for sample_id in ids], dtype=np.int64)
        except KeyError as err:
            raise ValueError(
                f"sample id {err.args[0]!r} has no cluster in the assignments; re-run "
                "encode-cluster on the same data spec (name, n_train, data seed)"
            ) from None


def load_clusters(folder: str | Path) -> ClusterAssignments:
    """Read ``assignments.csv``, ``cluster_centers.npy`` and ``summary.json`` from ``folder``."""
    folder = Path(folder)
    missing = [name for name in FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} is not an encode-cluster folder: missing {', '.join(missing)}"
        )
    with open(folder / "assignments.csv", newline="") as handle:
        rows = csv.DictReader(handle)
        by_id = {row["sample_id"]: int(row["cluster"]) for row in rows}
    summary = json.loads((folder / "summary.json").read_text())
    return ClusterAssignments(by_id, np.load(folder / "cluster_centers.npy"), summary)
