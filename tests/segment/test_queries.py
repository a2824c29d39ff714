"""Dynamic multi-scale queries and the blind grid."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.segment.queries import DynamicQueryGenerator, _label_stats, grid_queries


def test_every_confident_region_gets_a_prompt_inside_it(dense, image, truth):
    probabilities = dense.predict(image, ["sky", "road", "car"]).probabilities
    queries = DynamicQueryGenerator(scales=(0.5, 1.0), min_queries=3).generate(probabilities)
    assert set(queries.class_indices.tolist()) == {0, 1, 2}
    for (x, y), k in zip(queries.points, queries.class_indices, strict=True):
        assert truth[int(y), int(x)] == k  # the prompt lies inside its class's region
    assert 3 <= len(queries) <= 200
    assert queries.meta["mode"] == "dynamic"


def test_interior_point_not_centroid_for_an_l_shaped_region():
    probabilities = np.zeros((2, 40, 40), np.float32)
    probabilities[0] = 1.0
    probabilities[1, 5:35, 5:12] = 1.0  # vertical bar of an L
    probabilities[1, 28:35, 5:35] = 1.0  # horizontal bar
    probabilities[0][probabilities[1] > 0] = 0.0
    queries = DynamicQueryGenerator(scales=(1.0,), min_queries=1, cell=1000).generate(probabilities)
    x, y = queries.points[queries.class_indices == 1][0]
    assert probabilities[1, int(y), int(x)] == 1.0  # the centroid (~(15, 24)) is outside


def test_threshold_adapts_to_global_confidence():
    generator = DynamicQueryGenerator(base_threshold=0.9)
    confident = np.full((2, 10, 10), 0.05, np.float32)
    confident[0] = 0.95
    hesitant = np.full((4, 10, 10), 0.22, np.float32)
    hesitant[0] = 0.34
    assert generator.threshold_for(confident)[0] == pytest.approx(0.855)
    assert generator.threshold_for(hesitant)[0] == pytest.approx(0.306)


def test_query_count_grows_with_scene_complexity():
    rng = np.random.default_rng(0)
    simple = np.zeros((3, 64, 64), np.float32)
    simple[0] = 1.0
    busy = np.zeros((8, 64, 64), np.float32)
    labels = np.kron(rng.integers(0, 8, (8, 8)), np.ones((8, 8), int))
    busy[labels, *np.indices((64, 64))] = 1.0
    generator = DynamicQueryGenerator(min_queries=2, max_queries=60)
    few, many = generator.generate(simple), generator.generate(busy)
    assert few.meta["complexity"] < many.meta["complexity"]
    assert len(few) < len(many) <= 60


def test_grid_prompts_and_bad_input():
    probabilities = np.zeros((2, 20, 30), np.float32)
    probabilities[1] = 1.0
    grid = grid_queries(probabilities, side=3)
    assert len(grid) == 9 and (grid.class_indices == 1).all()
    assert grid.points[:, 0].max() < 30 and grid.points[:, 1].max() < 20
    assert grid.to_json(["a", "b"])[0]["class_name"] == "b"
    with pytest.raises(ValueError, match=r"\(K, H, W\)"):
        DynamicQueryGenerator().generate(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="min_queries"):
        DynamicQueryGenerator(min_queries=5, max_queries=2)
    with pytest.raises(ValueError, match="scales"):
        DynamicQueryGenerator(scales=())


def test_label_stats_count_average_and_pick_the_first_deepest_pixel():
    labels = np.array([[0, 7, 7], [3, 7, 0], [3, 3, 7]])  # sparse ids, 0 = outside
    plane = np.arange(9, dtype=np.float32).reshape(3, 3)
    inside = np.array([[9, 1, 2], [5, 2, 9], [5, 1, 2]], np.float32)  # ties for both labels
    counts, means, interior = _label_stats(labels, plane, inside)
    assert counts.tolist() == [3, 4]  # label 3, then label 7
    assert means.tolist() == pytest.approx([(3 + 6 + 7) / 3, (1 + 2 + 4 + 8) / 4])
    assert interior.tolist() == [[1, 0], [0, 2]]  # first in row-major order on ties
