"""The benchmark loop and the matched-count interpolation."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from clusterlens.regions.benchmark import ROW_KEYS, benchmark_methods, interpolate_at


def test_interpolate_at_matched_region_counts():
    rows = [
        {"method": "slic", "segments_found": 100.0, "asa": 0.8},
        {"method": "slic", "segments_found": 300.0, "asa": 0.9},
        {"method": "fast", "segments_found": 200.0, "asa": 0.99},
    ]
    assert interpolate_at(rows, "slic", "asa", 200.0) == pytest.approx(0.85)
    assert interpolate_at(rows, "slic", "asa", 100.0) == 0.8
    assert math.isnan(interpolate_at(rows, "slic", "asa", 400.0))  # never extrapolates
    assert math.isnan(interpolate_at(rows, "other", "asa", 200.0))


def test_benchmark_methods_rows_and_progress():
    image = np.zeros((20, 30, 3), dtype=np.float32)
    image[:, 15:] = 1.0
    truth = np.zeros((20, 30), dtype=int)
    truth[:, 15:] = 1
    samples = [
        SimpleNamespace(image_id=str(i), image=image, segmentations=[truth]) for i in range(2)
    ]
    seen = []
    rows = benchmark_methods(samples, ["fast", "felzenszwalb"], [4, 10], on_image=seen.append)
    assert seen == ["0", "1"]
    assert sorted((row["method"], row["n_segments"]) for row in rows) == [
        ("fast", 4),
        ("fast", 10),
        ("felzenszwalb", 4),
        ("felzenszwalb", 10),
    ]
    for row in rows:
        assert set(row) == set(ROW_KEYS)
        assert row["images"] == 2
        assert row["asa"] == 1.0 and row["undersegmentation_error"] == 0.0
    coarse = [row for row in rows if row["method"] == "felzenszwalb" and row["n_segments"] == 4]
    assert coarse[0]["segments_found"] == 2  # the two flat halves
