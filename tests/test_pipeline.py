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


# ---------------------------------------------------------------- typed queries (issue 16)


@dataclass
class BandsModel:
    """Sky: the top third; Road: the bottom third; Car: the left half. Knows words only."""

    name: str = "test:bands"
    words = {"sky": "Sky", "road": "Road", "car": "Car", "cars": "Car", "vehicles": "Car"}

    def match_query(self, query: str) -> QueryMatch:
        found = self.words.get(query.lower().strip())
        scores = dict.fromkeys(("Sky", "Road", "Car"), 0.1)
        if found:
            scores[found] = 0.9
            scores["Road" if found != "Road" else "Sky"] = 0.3  # the runner-up
        return QueryMatch(query, bool(found), (found,) if found else (), scores, 0.45)

    def relevance(self, image, classes) -> np.ndarray:
        height, width = image.shape[:2]
        coupling = np.zeros((height, width), np.float32)
        if "Sky" in classes:
            coupling[: height // 3] += 0.9
        if "Road" in classes:
            coupling[height - height // 3 :] += 0.9
        if "Car" in classes:
            coupling[:, : width // 2] += 0.8
        return np.clip(coupling, 0, 1)


def centres(result) -> tuple[np.ndarray, np.ndarray]:
    """Normalised (y, x) centres of the kept patches."""
    boxes = result.allocation.boxes
    return boxes[:, 1::2].mean(axis=1), boxes[:, 0::2].mean(axis=1)


def test_two_objects_are_a_union_and_the_parse_is_reported():
    result = select_patches(textured(), "the sky and the road", "topk", 32, model=BandsModel())
    meta = result.allocation.meta
    assert meta["query_parse"]["objects"] == ["sky", "road"]
    assert meta["query_match"]["classes"] == ["Sky", "Road"]
    phrases = meta["query_match"]["phrases"]
    assert [p["best"][0] for p in phrases] == ["Sky", "Road"]
    assert phrases[0]["runner_up"] == ["Road", 0.3]
    y, _ = centres(result)
    assert ((y < 1 / 3) | (y > 2 / 3)).all()
    coupling = result.ways[2]  # the union: both bands, nothing between them
    assert coupling[:42].min() == coupling[-42:].min() == pytest.approx(0.9)
    assert coupling[43:85].max() == 0


def test_everything_except_an_object_leaves_it_out():
    model = BandsModel()
    result = select_patches(textured(), "everything except the sky", "topk", 48, model=model)
    assert result.allocation.meta["query_parse"]["intent"] == "except"
    assert result.allocation.meta["query_match"]["negated"] == ["Sky"]
    np.testing.assert_allclose(result.ways[2], 1 - model.relevance(textured(), ["Sky"]))
    y, _ = centres(result)
    assert (y > 1 / 3).all()


def test_an_object_in_a_region_keeps_the_region_only():
    result = select_patches(textured(), "the road on the right", "topk", 16, model=BandsModel())
    assert result.allocation.meta["query_parse"]["regions"] == ["right"]
    y, x = centres(result)
    assert (x > 0.5).all() and (y > 2 / 3).all()
    assert result.ways[2][:, :64].max() == 0  # the left half is masked out


def test_a_region_alone_needs_no_model_and_stays_inside():
    # a model name that cannot load proves none was asked for
    result = select_patches(textured(), "the top-left corner", "topk", 64, model="nosuch:x")
    y, x = centres(result)
    assert ((y < 0.5) & (x < 0.5)).mean() >= 0.9
    assert result.allocation.meta["balancer_weights"] == pytest.approx(
        {"information": 0.25, "salience": 0.25, "coupling": 0.5}
    )
    assert any("names a region (top-left)" in note for note in result.notes)
    assert result.allocation.cost["encoder_calls"] == 0


def test_whole_scene_questions_use_information_and_salience_and_say_so():
    result = select_patches(textured(), "Describe the image.", "topk", 8, model="nosuch:x")
    assert result.allocation.meta["query_parse"]["intent"] == "scene"
    assert result.allocation.meta["query_match"] is None
    assert result.allocation.meta["balancer_weights"]["coupling"] == 0.0
    assert any("whole scene" in note for note in result.notes)


def test_unmatched_phrases_are_left_out_and_overlapping_negations_are_not_subtracted():
    result = select_patches(textured(), "sky and a giraffe", "topk", 8, model=BandsModel())
    assert result.allocation.meta["query_match"]["classes"] == ["Sky"]
    assert any("'giraffe' names none" in note and "left out" in note for note in result.notes)
    both = select_patches(textured(), "cars except vehicles", "topk", 8, model=BandsModel())
    assert any("not subtracted" in note for note in both.notes)
    assert both.allocation.meta["query_match"]["classes"] == ["Car"]
    assert both.ways[2].max() > 0.7


def lazy_bands_model():
    """The offline model's class with a 1x1 convolution: it has the lazy interface."""
    import torch
    from torch import nn

    from clusterlens.models.offline.segmenter import CamVidSegmenter

    class Pointwise(nn.Module):
        stride = 16

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.conv = nn.Conv2d(3, 3, 1)

        def forward(self, batch):
            return self.conv(batch) * 4

    class Words:
        def match(self, query):
            return BandsModel().match_query(query)

    metadata = {"class_names": ["Sky", "Road", "Car"], "scale": 0.5, "flip_tta": False}
    return CamVidSegmenter(Pointwise(), metadata, name="test:lazy", matcher=Words())


def test_lazy_cascade_falls_back_to_the_dense_map_for_compound_queries():
    model = lazy_bands_model()
    plain = select_patches(textured(), "the sky", "lazy-cascade", 16, model=model)
    assert not any("dense map" in note for note in plain.notes)  # one object stays lazy
    for query in ("sky on the left", "sky and road", "sky except cars"):
        result = select_patches(textured(), query, "lazy-cascade", 16, model=model)
        assert any("combine whole maps" in note for note in result.notes), query
        reference = select_patches(textured(), query, "topk", 16, model=model)
        assert set(zip(result.allocation.rows, result.allocation.cols, strict=True)) == set(
            zip(reference.allocation.rows, reference.allocation.cols, strict=True)
        )
    _, x = centres(select_patches(textured(), "sky on the left", "lazy-cascade", 16, model=model))
    assert (x < 0.5).all()


def test_several_objects_take_turns_so_a_large_one_cannot_fill_the_budget():
    @dataclass
    class LargeAndSmall(BandsModel):
        def relevance(self, image, classes):
            coupling = np.zeros(image.shape[:2], np.float32)
            if "Sky" in classes:
                coupling[:96] = 0.95  # three quarters of the image, confident
            if "Car" in classes:
                coupling[112:, 112:] = 0.6  # a small, less confident block
            return np.clip(coupling, 0, 1)

    result = select_patches(textured(), "sky and a car", "topk", 16, model=LargeAndSmall())
    y, x = centres(result)
    in_car = (y > 112 / 128) & (x > 112 / 128)
    # 4-px cells: the car covers 16 of them, the sky 768; turns give each 8 of the 16
    assert in_car.sum() == 8 and (y < 0.75).sum() == 8
    # the picture still shows the union of the probabilities
    assert result.ways[2].max() == pytest.approx(0.95) and result.ways[2][120, 120] == 0.6
    alone = select_patches(textured(), "sky", "topk", 16, model=LargeAndSmall())
    assert (centres(alone)[0] < 0.75).all()


def test_near_looks_around_the_reference_object():
    # Sky is rows 0-41 of 128; "near" spreads it by an eighth of 128 = 16 px
    result = select_patches(textured(), "cars near the sky", "topk", 16, model=BandsModel())
    assert result.allocation.meta["query_match"]["near"] == ["Sky"]
    assert result.allocation.meta["query_parse"]["near"] == ["sky"]
    y, x = centres(result)
    assert (x < 0.5).all() and (y < 50 / 128).all()
    assert result.ways[2][:, 64:].max() == 0 and result.ways[2][60:].max() == 0
    alone = select_patches(textured(), "near the road", "topk", 16, model=BandsModel())
    assert (centres(alone)[0] > 70 / 128).all()
    assert any("around road" in note for note in alone.notes)
    assert alone.allocation.meta["balancer_weights"]["coupling"] == 0.5


def test_min_match_overrides_the_threshold_and_loose_matches_are_noted():
    strict = select_patches(textured(), "the sky", "topk", 8, model=BandsModel(), min_match=0.95)
    assert strict.allocation.meta["query_match"]["matched"] is False
    assert any("0.90 < 0.95" in note for note in strict.notes)

    @dataclass
    class Weak(BandsModel):
        def match_query(self, query):
            match = super().match_query(query)
            return QueryMatch(query, match.matched, match.classes, {"Sky": 0.47, "Road": 0.1}, 0.45)

    result = select_patches(textured(), "sky", "topk", 8, model=Weak())
    phrase = result.allocation.meta["query_match"]["phrases"][0]
    assert phrase["loose"] == "best 'Sky' scores 0.47 < 0.50"
    assert phrase["runner_up"] == ["Road", 0.1]
    assert any("only a loose match for 'Sky'" in note for note in result.notes)
    with pytest.raises(ValueError, match="threshold must lie in"):
        select_patches(textured(), "sky", "topk", 8, model=BandsModel(), min_match=2.0)
