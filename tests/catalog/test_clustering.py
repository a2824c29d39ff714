"""Clustering: faiss k-means on embeddings, agglomerative / spectral on loss distances."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.catalog import CatalogStore, ImageRecord, cluster_catalog
from clusterlens.catalog.clustering import distance_labels, kmeans_labels


def _two_groups(n=10, seed=0):
    rng = np.random.default_rng(seed)
    centres = np.array([[5.0, 0, 0, 0], [0, 0, 5.0, 0]])
    groups = np.repeat([0, 1], n // 2)
    return centres[groups] + rng.normal(0, 0.3, (n, 4)), groups


def _same_partition(a, b):
    return len({(x, y) for x, y in zip(a, b, strict=True)}) == len(set(a)) == len(set(b))


def test_kmeans_finds_separated_groups():
    vectors, groups = _two_groups()
    assert _same_partition(kmeans_labels(vectors, 2), groups)


@pytest.mark.parametrize("method", ["agglomerative", "spectral"])
def test_distance_methods_find_separated_groups(method):
    vectors, groups = _two_groups()
    distance = np.linalg.norm(vectors[:, None] - vectors[None], axis=2)
    assert _same_partition(distance_labels(distance, 2, method), groups)
    with pytest.raises(ValueError, match="--method"):
        distance_labels(distance, 2, "dbscan")


@pytest.fixture
def grouped_db(tmp_path):
    """A store with embeddings and an asymmetric distance that both hold two groups."""
    vectors, groups = _two_groups()
    store = CatalogStore(tmp_path / "c.db")
    store.register_images([(tmp_path / f"{i}.png", 4, 4, f"{i:064x}", None) for i in range(10)])
    run = store.start_run("yolo:m.yaml", "yolo", {}, {})
    store.write_batch("yolo:m.yaml", run, [ImageRecord(i + 1, v) for i, v in enumerate(vectors)])
    rows = []
    for i in range(10):
        for j in range(10):
            base = 0.1 if groups[i] == groups[j] else 3.0
            for component in ("box", "cls", "dfl"):
                rows.append(("yolo:m.yaml", i + 1, j + 1, component, base + 0.05 * (i > j)))
    with store.transaction() as connection:
        connection.executemany("INSERT INTO distances VALUES (?, ?, ?, ?, ?)", rows)
    store.close()
    return tmp_path / "c.db", groups


@pytest.mark.parametrize(
    ("by", "method"), [("embedding", None), ("distance", "agglomerative"), ("distance", "spectral")]
)
def test_cluster_catalog_writes_the_clusters_table(grouped_db, by, method):
    db, groups = grouped_db
    result = cluster_catalog(db, 2, by=by, method=method or "agglomerative")
    assert sorted(result["sizes"]) == [5, 5]
    labels = [
        row[0] for row in CatalogStore(db).query("SELECT cluster FROM clusters ORDER BY image_id")
    ]
    assert _same_partition(labels, groups)
    cluster_catalog(
        db, 2, by=by, method=method or "agglomerative"
    )  # re-run replaces, no duplicates
    assert CatalogStore(db).counts()["clusters"] == 10


def test_bad_cluster_requests(grouped_db, tmp_path):
    db, _ = grouped_db
    with pytest.raises(ValueError, match="between 2"):
        cluster_catalog(db, 11)
    with pytest.raises(ValueError, match="--by"):
        cluster_catalog(db, 2, by="colour")
    with pytest.raises(FileNotFoundError):
        cluster_catalog(tmp_path / "none.db", 2)
    with pytest.raises(ValueError, match="no embeddings for model 'open_clip:x'"):
        cluster_catalog(db, 2, model="open_clip:x")
    store = CatalogStore(db)
    run = store.start_run("open_clip:x", "embedding", {}, {})
    store.write_batch("open_clip:x", run, [ImageRecord(i, np.ones(3)) for i in range(1, 11)])
    store.close()
    with pytest.raises(ValueError, match="choose one with --model"):
        cluster_catalog(db, 2)  # two models with embeddings
    with pytest.raises(ValueError, match="run 'catalog distances' first"):
        cluster_catalog(db, 2, by="distance", model="open_clip:x")
