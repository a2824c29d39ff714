"""The catalog tab's handlers on a tiny catalog: read-only, recorded paths only."""

from __future__ import annotations

import hashlib

import cv2
import numpy as np
import pytest

from clusterlens.app.catalog import (
    CatalogView,
    cluster_grid,
    cluster_overview,
    image_detail,
    open_catalog,
    sorted_grid,
)

CATALOG_MODEL = "yolo:tiny.yaml"  # as the tiny_catalog fixture (tests/app/conftest.py)
LABEL = f"kmeans · {CATALOG_MODEL} · k=2"


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cluster_sizes_and_grids(tiny_catalog):
    view, message = open_catalog(tiny_catalog)
    assert message == ""
    assert [c.label for c in view.clusterings()] == [LABEL]
    sizes, ids, line = cluster_overview(view, LABEL)
    assert sizes == [[0, 4], [1, 2]] and ids == [0, 1] and line == "2 clusters, 6 images"
    items, members, line = cluster_grid(view, LABEL, 1)
    assert members == [5, 6] and line == "cluster 1: 2 images"
    assert [caption for _, caption in items] == ["#5 shape_004.png", "#6 shape_005.png"]
    assert items[0][0].shape == (72, 96, 3)  # already under the thumbnail side


@pytest.mark.parametrize(
    ("key", "descending", "first"),
    [("box", True, 6), ("seg", True, 1), ("total_loss", False, 1), ("mean_iou", True, 1)],
)
def test_images_sorted_by_any_loss_or_metric(tiny_catalog, key, descending, first):
    view, _ = open_catalog(tiny_catalog)
    items, ids, line = sorted_grid(view, CATALOG_MODEL, key, descending)
    assert ids[0] == first and len(ids) == 6 and f"with {key}" in line
    values = [float(caption.split("=")[1]) for _, caption in items]
    assert values == sorted(values, reverse=descending)


def test_a_click_shows_predictions_losses_and_neighbours_both_ways(tiny_catalog):
    view, _ = open_catalog(tiny_catalog)
    picture, rows, outgoing, incoming, line = image_detail(view, 3, CATALOG_MODEL)
    plain = cv2.resize(view.image(3), (480, 360), interpolation=cv2.INTER_LINEAR)
    assert picture.shape == (360, 480, 3)  # enlarged to DETAIL_SIDE (5x) to be readable
    # the mask (rows 10-30, columns 20-50, 5x) is tinted, the far corner is not
    assert (picture[100, 175] != plain[100, 175]).any()
    assert (picture[300, 450] == plain[300, 450]).all()
    # the box (x 20-50, y 10-30) is outlined at 5x: its left edge at x = 100
    assert (picture[120, 100] != plain[120, 100]).any()
    table = dict(rows)
    assert table["box"] == "0.3" and table["mean_iou"] == "0.3333"
    # dist[3][j] = |3 - j| + 0.5 (3 > j), over two components: 4 is nearest (2.0), then 2
    assert [caption.split()[0] for _, caption in outgoing[:2]] == ["#4", "#2"]
    assert outgoing[0][1] == "#4 d=2"
    # dist[j][3]: 2 is nearest (2.0), then 4 (3.0)
    assert [caption for _, caption in incoming[:2]] == ["#2 d=2", "#4 d=3"]
    assert "1 predictions" in line
    *_, one_way = image_detail(view, 3, CATALOG_MODEL, component="box")
    assert one_way.startswith("#3")


def test_catalog_is_never_written(tiny_catalog):
    before = digest(tiny_catalog), tiny_catalog.stat().st_mtime_ns
    view, _ = open_catalog(tiny_catalog)
    cluster_overview(view, LABEL)
    cluster_grid(view, LABEL, 0)
    sorted_grid(view, CATALOG_MODEL, "box", True)
    image_detail(view, 2, CATALOG_MODEL)
    assert (digest(tiny_catalog), tiny_catalog.stat().st_mtime_ns) == before


def test_only_recorded_paths_are_read(tiny_catalog, street_file, tmp_path):
    view = CatalogView(tiny_catalog)
    recorded = view.paths[1]
    assert view.read_image(recorded).shape == (72, 96, 3)
    for other in (street_file, tiny_catalog, recorded.parent / ".." / "labels" / "x.png"):
        with pytest.raises(PermissionError, match="refused"):
            view.read_image(other)
    # a path that resolves to a recorded file, spelt differently, is that file
    spelt = recorded.parent / ".." / "images" / recorded.name
    assert view.read_image(spelt).shape == (72, 96, 3)


def test_missing_or_foreign_catalog_is_a_message(tmp_path, street_file):
    view, message = open_catalog(tmp_path / "missing.db")
    assert view is None and message.startswith("⚠️") and "missing.db" in message
    view, message = open_catalog(street_file)
    assert view is None and "not a clusterlens catalog" in message
    view, message = open_catalog(None)
    assert view is None and "--catalog" in message
    *_, message = cluster_overview(None, LABEL, empty=([], []))
    assert message.startswith("⚠️ no catalog")


def test_bad_requests_are_messages(tiny_catalog):
    view, _ = open_catalog(tiny_catalog)
    *_, message = cluster_overview(view, "nothing", empty=([], []))
    assert message.startswith("⚠️") and "no clustering" in message
    *_, message = sorted_grid(view, CATALOG_MODEL, "colour", True, empty=([], []))
    assert "cannot sort by 'colour'" in message
    *_, message = image_detail(view, 99, CATALOG_MODEL, empty=(None, [], [], []))
    assert "no image with id 99" in message


def test_an_image_without_rows_of_the_model_shows_plainly(tiny_catalog):
    view, _ = open_catalog(tiny_catalog)
    picture, rows, outgoing, incoming, line = image_detail(view, 1, "yolo:other.yaml")
    plain = cv2.resize(view.image(1), (480, 360), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(picture, plain)  # nothing drawn on it
    assert rows == [] and outgoing == incoming == []
    assert "0 predictions" in line and "no distances stored" in line
