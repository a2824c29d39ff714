"""select_patches end to end, with a stand-in coupling model and with the offline one."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from clusterlens.models.text import QueryMatch
from clusterlens.pipeline import select_patches


@dataclass
class TopHalfModel:
    """Couples the query 'sky' to the top half of any image; knows no other class."""

    name: str = "test:top-half"

    def match_query(self, query: str) -> QueryMatch:
        matched = "sky" in query.lower()
        return QueryMatch(
            query, matched, ("Sky",) if matched else (), {"Sky": 0.9 if matched else 0.1}, 0.45
        )

    def relevance(self, image, classes) -> np.ndarray:
        coupling = np.zeros(image.shape[:2], np.float32)
        coupling[: image.shape[0] // 2] = 0.9
        return coupling


def textured(seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((128, 128, 3)).astype(np.float32)


@pytest.mark.parametrize(
    "strategy", ["topk", "mip-cascade", "cluster-cascade", "quadtree", "foveated"]
)
def test_query_steers_the_patches(strategy):
    result = select_patches(textured(), "the sky", strategy, 64, model=TopHalfModel())
    centres_v = result.allocation.boxes[:, 1::2].mean(axis=1)
    # a quad-tree tiles the whole image: its detail (many small leaves) goes to the sky
    assert (centres_v < 0.5).mean() > (0.75 if strategy == "quadtree" else 0.9)
    assert result.allocation.meta["query_match"]["classes"] == ["Sky"]
    assert result.allocation.meta["balancer"] == "adaptive"
    weights = result.allocation.meta["balancer_weights"]
    assert weights["coupling"] == max(weights.values())
    assert sum(weights.values()) == pytest.approx(1, abs=1e-3)  # reported rounded to 4 places


def test_unmatched_and_empty_queries_fall_back_and_say_so():
    for query in ("a giraffe", "", None):
        result = select_patches(textured(), query, "topk", 16, model=TopHalfModel())
        assert result.allocation.meta["balancer_weights"]["coupling"] == 0.0
        assert any("information and salience" in note for note in result.notes)
        np.testing.assert_array_equal(result.ways[2], 0)


def test_a_query_absent_from_the_image_is_noted():
    @dataclass
    class Nowhere(TopHalfModel):
        def relevance(self, image, classes):
            return np.full(image.shape[:2], 0.01, np.float32)

    result = select_patches(textured(), "sky", "topk", 16, model=Nowhere())
    assert any("nothing in the image matches" in note for note in result.notes)
    assert len(result.allocation) == 16


def test_large_images_are_downscaled_first_but_boxes_stay_in_original_pixels():
    image = np.zeros((2000, 1000, 3), np.float32)
    result = select_patches(image, None, "uniform", 4, model=TopHalfModel(), max_side=512)
    assert result.image.shape == (512, 256, 3)
    assert (result.allocation.grid.height, result.allocation.grid.width) == (2000, 1000)
    assert result.allocation.meta["processed_size"] == [512, 256]
    assert result.allocation.pixel_boxes[:, 2:].max() <= 1000 * 2
    sized = select_patches(
        image, None, "topk", 1, model=TopHalfModel(), max_side=512, patch_size=100
    )
    assert sized.allocation.grid.shape == (20, 10)  # 100-px patches of the 2000x1000 original


@pytest.mark.slow
def test_offline_model_finds_the_road_on_camvid(shared_data):
    from clusterlens.evaluate.camvid import list_pairs, load_pair

    image, labels = load_pair(*list_pairs("val", shared_data / "camvid")[0])
    result = select_patches(image, "the road", "mip-cascade", 64, max_side=None)
    rows, cols = result.allocation.rows, result.allocation.cols
    grid = result.allocation.grid
    centre_y = ((rows + 0.5) * grid.height / grid.rows).astype(int)
    centre_x = ((cols + 0.5) * grid.width / grid.cols).astype(int)
    on_road = (labels[centre_y, centre_x] == 3).mean()
    road_share = (labels == 3).mean()
    assert on_road > 0.8 and on_road > road_share + 0.3
    assert result.allocation.meta["model"] == "offline:camvid"


def test_balancer_choice_is_checked_and_reported():
    with pytest.raises(ValueError, match="balancer must be"):
        select_patches(textured(), "sky", "topk", 4, model=TopHalfModel(), balancer="clever")
    result = select_patches(
        textured(), "sky", "topk", 4, model=TopHalfModel(), weights={"coupling": 1.0}
    )
    assert result.allocation.meta["balancer"] == "fixed"  # explicit weights imply fixed
    fixed = select_patches(textured(), "sky", "topk", 4, model=TopHalfModel(), balancer="fixed")
    assert fixed.allocation.meta["balancer_weights"]["coupling"] == 0.8
    assert result.allocation.meta["balancer_weights"] == {
        "information": 0.0,
        "salience": 0.0,
        "coupling": 1.0,
    }


def test_no_query_uses_no_model_and_says_only_that():
    result = select_patches(textured(), "", "topk", 4)  # default model never loaded
    assert result.notes == ["no query: patches chosen by information and salience only"]
    assert result.allocation.meta["query_match"] is None
