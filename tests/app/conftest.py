"""Fixtures of the app tests: a small picture file with sky above and road below."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def street_file(tmp_path: Path) -> Path:
    """A 96x128 PNG: blue top half, grey bottom half with a darker stripe (a 'road')."""
    pixels = np.zeros((96, 128, 3), np.uint8)
    pixels[:48] = (110, 160, 230)
    pixels[48:] = (120, 120, 120)
    pixels[70:80] = (60, 60, 60)
    path = tmp_path / "street.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def broken_file(tmp_path: Path) -> Path:
    """A file named like a PNG that holds text."""
    path = tmp_path / "broken.png"
    path.write_text("not an image")
    return path


#: The model name of the tiny catalog's planted YOLO rows.
CATALOG_MODEL = "yolo:tiny.yaml"


@pytest.fixture
def tiny_catalog(tmp_path: Path) -> Path:
    """A catalog of 6 generated shape images, written row by row (no model runs), as
    tests/catalog does: embeddings, one prediction each (box + mask), losses that grow
    with the image id, metrics, an asymmetric distance, and a 2-cluster k-means.

    dist[i][j] = |i - j| + 0.5 * (i > j): the nearest image is the next id one way and
    the previous one the other way round.
    """
    import cv2

    from clusterlens.catalog import CatalogStore, ImageRecord
    from clusterlens.catalog.synthetic import make_shapes_dataset

    data = make_shapes_dataset(tmp_path / "shapes", count=6)
    paths = sorted((data / "images").glob("*.png"))
    db = tmp_path / "catalog.db"
    store = CatalogStore(db)
    store.register_images([(path, 96, 72, f"{i:064x}", None) for i, path in enumerate(paths)])
    run = store.start_run(CATALOG_MODEL, "yolo", {}, {})
    mask = np.zeros((72, 96), np.uint8)
    mask[10:30, 20:50] = 255
    records = [
        ImageRecord(
            i,
            np.array([float(i < 4), float(i >= 4), 0.0], np.float32),
            predictions=[
                dict(
                    x1=20.0,
                    y1=10.0,
                    x2=50.0,
                    y2=30.0,
                    confidence=0.9,
                    class_id=1,
                    class_name="square",
                    mask_png=cv2.imencode(".png", mask)[1].tobytes(),
                )
            ],  # fmt: skip
            losses={"box": 0.1 * i, "cls": 0.2, "dfl": 0.3, "seg": 0.05 * (7 - i)},
            metrics={
                "n_labels": 1,
                "n_predictions": 1,
                "mean_iou": 1 / i,
                "mean_conf": 0.9,
                "hit_freq": 1.0,
                "dice": 0.5,
                "categories": {"square": 1},
            },  # fmt: skip
        )
        for i in range(1, 7)
    ]
    store.write_batch(CATALOG_MODEL, run, records)
    rows = [
        (CATALOG_MODEL, i, j, component, abs(i - j) + 0.5 * (i > j))
        for i in range(1, 7)
        for j in range(1, 7)
        for component in ("box", "cls")
    ]
    clusters = [("kmeans", CATALOG_MODEL, 2, i, int(i >= 5)) for i in range(1, 7)]
    with store.transaction() as connection:
        connection.executemany("INSERT INTO distances VALUES (?, ?, ?, ?, ?)", rows)
        connection.executemany("INSERT INTO clusters VALUES (?, ?, ?, ?, ?)", clusters)
    store.close()
    return db
