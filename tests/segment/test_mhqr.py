"""The MHQR pipeline end to end, every stage switch, and the offline dense predictor."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.evaluate.segmentation import mean_iou
from clusterlens.segment import (
    MHQRConfig,
    MHQRSegmenter,
    OfflineDensePredictor,
    OfflineRegionProposer,
    granularity_for_scale,
    load_dense_predictor,
)

NAMES = ["sky", "road", "car"]


def pipeline(dense, config):
    proposer = OfflineRegionProposer(fine_segments=80, medium_segments=20, coarse_segments=6)
    return MHQRSegmenter(dense, proposer, config)


@pytest.mark.parametrize(
    "config",
    [MHQRConfig(d, h, m) for d in (True, False) for h in (True, False) for m in (True, False)],
    ids=lambda config: config.describe(),
)
def test_every_stage_combination_segments_the_scene(dense, image, truth, config):
    result = pipeline(dense, config).segment(image, NAMES)
    assert result.labels.shape == truth.shape and result.class_names == tuple(NAMES)
    assert mean_iou(result.labels, truth, 3) > 0.8
    assert result.queries.meta["mode"] == ("dynamic" if config.dynamic_queries else "grid")
    assert (result.merge is not None) == config.merging
    assert result.soft_masks.shape == (len(result.queries), *truth.shape)
    assert set(result.seconds) == {"dense", "queries", "proposals", "refinement", "merging"}
    masks = result.masks_json()
    assert masks and all(row["class_name"] in NAMES for row in masks)


def test_without_hierarchy_each_prompt_keeps_the_mask_its_scale_asks_for(dense, image):
    result = pipeline(dense, MHQRConfig(True, False, False)).segment(image, NAMES)
    for index, scale in enumerate(result.queries.scales):
        level = granularity_for_scale(float(scale))
        assert (result.soft_masks[index] == result.proposals.masks[index, level]).all()
    assert [granularity_for_scale(s) for s in (0.25, 0.5, 1.0, 2.0)] == [0, 1, 2, 2]


def test_dense_only_is_the_arg_max(dense, image):
    result = pipeline(dense, None).dense_only(image, NAMES)
    assert (result.labels == dense.predict(image, NAMES).probabilities.argmax(0)).all()
    assert result.queries is None and result.masks_json() == []


@pytest.mark.slow  # loads the sentence model for free-text names
def test_offline_predictor_maps_free_names_to_its_classes():
    predictor = load_dense_predictor("offline:camvid")
    assert isinstance(predictor, OfflineDensePredictor)
    mapping = predictor.class_mapping(["Road", "sidewalk", "sky"])
    names = predictor.segmenter.class_names
    assert [[names[i] for i in row] for row in mapping] == [["Road"], ["Pavement"], ["Sky"]]
    image = np.random.default_rng(0).random((40, 56, 3)).astype(np.float32)
    out = OfflineDensePredictor(predictor.segmenter, background=True).predict(
        image, ["car", "road"]
    )
    assert out.class_names == ("car", "road", "background")
    assert out.probabilities.shape == (3, 40, 56)
    assert np.allclose(out.probabilities.sum(axis=0), 1.0, atol=1e-5)
    assert out.features.shape == (11, 40, 56)
    with pytest.raises(ValueError, match="names none of"):
        predictor.class_mapping(["a purple giraffe"])
    with pytest.raises(ValueError, match="unique"):
        predictor.predict(image, ["car", "Car"])
    with pytest.raises(ValueError, match="unknown dense model"):
        load_dense_predictor("yolo:x")


@pytest.mark.slow
def test_offline_pipeline_on_a_camvid_frame(shared_data):
    from clusterlens.evaluate.seg_datasets import load_seg_dataset

    data = load_seg_dataset("camvid", shared_data, "val")
    image, label = data[0]
    segmenter = MHQRSegmenter.offline()
    dense = segmenter.dense_only(image, data.class_names)
    full = segmenter.segment(image, data.class_names)
    keep = label != 11
    dense_accuracy = (dense.labels == label)[keep].mean()
    full_accuracy = (full.labels == label)[keep].mean()
    assert dense_accuracy > 0.8
    assert abs(full_accuracy - dense_accuracy) < 0.05  # MHQR refines, it does not replace
    assert 10 <= len(full.queries) <= 200


@pytest.mark.slow
def test_offline_feature_pyramid_runs_the_model_at_each_scale():
    predictor = load_dense_predictor("offline:camvid", pyramid_scales=(0.5, 0.75))
    image = np.random.default_rng(0).random((36, 48, 3)).astype(np.float32)
    out = predictor.predict(image, ["Road", "Sky"])
    assert len(out.feature_pyramid) == 2
    assert np.array_equal(out.feature_pyramid[0], out.features)  # the shipped scale, reused
    assert out.feature_pyramid[1].shape == (11, 36, 48)
    assert not np.allclose(out.feature_pyramid[1], out.features)  # another input size
    plain = load_dense_predictor("offline:camvid").predict(image, ["Road", "Sky"])
    assert np.array_equal(plain.probabilities, out.probabilities)  # dense scores unchanged
    with pytest.raises(ValueError, match="pyramid_scales"):
        OfflineDensePredictor(predictor.segmenter, pyramid_scales=(0.0,))


def test_class_mapping_matches_each_name_list_once():
    class Matcher:
        class_names = ("Sky", "Road", "Pavement")
        calls = 0

        def match_query(self, name):
            Matcher.calls += 1
            return type("Match", (), {"matched": True, "classes": ("Pavement",)})()

    predictor = OfflineDensePredictor(Matcher())
    first = predictor.class_mapping(["road", "sidewalk"])
    first[1].append(0)  # callers may mutate their copy
    assert predictor.class_mapping([" road", "sidewalk "]) == [[1], [2]]
    assert Matcher.calls == 1
