"""Coarse-to-fine refinement, the dense baselines it is measured against, and the
offline model's probability pyramid."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from clusterlens.evaluate.seg_datasets import SegDataset
from clusterlens.segment import (
    CoarseToFineRefiner,
    HierarchicalRefiner,
    MHQRConfig,
    MHQRSegmenter,
    OfflineDensePredictor,
    OfflineRegionProposer,
    load_dense_predictor,
)
from clusterlens.segment.evaluation import evaluate_segmenter
from clusterlens.segment.refine import classes_nearby

NAMES = ["sky", "road", "car"]


def one_hot(labels: np.ndarray, classes: int = 3) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[labels].transpose(2, 0, 1)


def test_finer_level_moves_a_boundary_only_within_the_radius():
    coarse = np.zeros((4, 20), np.int64)
    coarse[:, 10:] = 1
    fine = np.zeros((4, 20), np.int64)
    fine[:, 7:] = 1  # the finer level puts the boundary 3 px to the left
    refined = CoarseToFineRefiner(radii=(3,)).refine(coarse, [one_hot(fine)])
    assert (refined == fine).all()
    too_far = CoarseToFineRefiner(radii=(1,)).refine(coarse, [one_hot(fine)])
    assert (too_far[:, :9] == 0).all() and (too_far[:, 9:] == 1).all()  # moved 1 px at most


def test_finer_level_never_invents_a_class_or_touches_the_interior():
    coarse = np.zeros((12, 12), np.int64)
    coarse[:, 6:] = 1
    fine = coarse.copy()
    fine[:, 5:7] = 2  # a class the coarse map did not place anywhere near
    fine[0:3, 0:3] = 1  # disagreement deep inside a region
    refined = CoarseToFineRefiner(radii=(2,)).refine(coarse, [one_hot(fine)])
    assert not (refined == 2).any()
    assert (refined[0:3, 0:3] == 0).all()


def test_levels_refine_in_turn_and_reuse_the_last_radius():
    coarse = np.zeros((2, 16), np.int64)
    coarse[:, 8:] = 1
    middle, finest = coarse.copy(), coarse.copy()
    middle[:, 6:] = 1  # 2 px: reached with radius 2
    finest[:, 5:] = 1  # one more px: reached with the reused radius 2 (1 px needed)
    refiner = CoarseToFineRefiner(radii=(2,))
    refined = refiner.refine(coarse, [one_hot(middle, 2), one_hot(finest, 2)])
    assert (refined == finest).all()
    assert (CoarseToFineRefiner(radii=(0,)).refine(coarse, [one_hot(middle, 2)]) == coarse).all()


def test_coarse_to_fine_errors():
    with pytest.raises(ValueError, match="radii"):
        CoarseToFineRefiner(radii=())
    with pytest.raises(ValueError, match="radii"):
        CoarseToFineRefiner(radii=(2, -1))
    refiner = CoarseToFineRefiner()
    with pytest.raises(ValueError, match="matching labels"):
        refiner.refine(np.zeros((4, 4), np.int64), [np.zeros((3, 4, 5), np.float32)])
    with pytest.raises(ValueError, match="labels must lie"):
        refiner.refine(np.full((4, 4), 3), [np.zeros((3, 4, 4), np.float32)])


def test_classes_nearby_is_a_dilated_one_hot():
    labels = np.zeros((5, 5), np.int64)
    labels[2, 2] = 1
    near = classes_nearby(labels, 2, 1)
    assert near[0].all()
    assert near[1].sum() == 9 and near[1, 1:4, 1:4].all()
    assert (classes_nearby(labels, 2, 0)[1] == (labels == 1)).all()


class PyramidDense:
    """A coarse level whose car is 2 px too wide, a finer level with the true car."""

    name = "pyramid"

    def __init__(self, truth: np.ndarray) -> None:
        self.truth = truth

    def predict(self, image, class_names):
        from clusterlens.segment.dense import DenseOutput

        wide = self.truth.copy()
        wide[(np.roll(self.truth, 2, axis=1) == 2) & (self.truth == 1)] = 2
        coarse = 0.1 + 0.7 * one_hot(wide)
        fine = 0.1 + 0.7 * one_hot(self.truth)
        return DenseOutput(coarse, coarse, tuple(class_names), probability_pyramid=(coarse, fine))


def segmenter(dense, refiner=None):
    proposer = OfflineRegionProposer(fine_segments=80, medium_segments=20, coarse_segments=6)
    return MHQRSegmenter(dense, proposer, refiner=refiner)


def test_pipeline_refines_the_merged_map_with_the_finer_level(image, truth):
    dense = PyramidDense(truth)
    coarse_errors = (dense.predict(image, NAMES).labels != truth).sum()
    assert coarse_errors > 0
    full = segmenter(dense).segment(image, NAMES)
    assert (full.labels != truth).sum() < coarse_errors
    assert isinstance(segmenter(dense).refiner, CoarseToFineRefiner)
    refined = segmenter(dense).dense_refined(image, NAMES)
    assert (refined.labels == truth).all()
    average = segmenter(dense).dense_multiscale(image, NAMES)
    probabilities = dense.predict(image, NAMES).probability_pyramid
    assert (average.labels == np.mean(probabilities, axis=0).argmax(0)).all()


def test_without_a_pyramid_the_merged_map_snaps_back_to_the_dense_one(dense, image):
    result = segmenter(dense).segment(image, NAMES)
    assert result.labels.shape == image.shape[:2]
    with pytest.raises(ValueError, match="no probability pyramid"):
        segmenter(dense).dense_multiscale(image, NAMES)
    with pytest.raises(ValueError, match="no probability pyramid"):
        segmenter(dense).dense_refined(image, NAMES)
    with pytest.raises(ValueError, match="CoarseToFineRefiner"):
        segmenter(dense, HierarchicalRefiner()).dense_refined(image, NAMES)


def test_evaluation_runs_dense_modes_and_rejects_unknown_ones(image, truth, tmp_path):
    from PIL import Image

    Image.fromarray((image * 255).astype(np.uint8)).save(tmp_path / "a.png")
    dataset = SegDataset(
        "scene",
        "val",
        tuple(NAMES),
        255,
        ((tmp_path / "a.png", tmp_path / "a.png"),),
        lambda path: truth,
    )
    pipeline = segmenter(PyramidDense(truth))
    rows = {
        mode: evaluate_segmenter(pipeline, dataset, mode)
        for mode in ("dense", "dense-multiscale", "dense-refined")
    }
    assert rows["dense-refined"]["miou"] == pytest.approx(1.0)
    assert rows["dense"]["miou"] < 1.0 and rows["dense"]["config"] == "dense"
    full = evaluate_segmenter(pipeline, dataset, MHQRConfig())
    assert full["config"] == "dynamic+hierarchical+merging"
    with pytest.raises(ValueError, match="unknown configuration"):
        evaluate_segmenter(pipeline, replace(dataset), "dense-tta")


@pytest.mark.slow
def test_offline_pyramid_defaults_and_validation():
    predictor = load_dense_predictor("offline:camvid")
    assert predictor.pyramid_scales == pytest.approx((0.5, 0.75, 0.875))
    image = np.random.default_rng(0).random((36, 48, 3)).astype(np.float32)
    out = predictor.predict(image, ["Road", "Sky"])
    assert len(out.probability_pyramid) == 3
    assert np.array_equal(out.probability_pyramid[0], out.probabilities)
    assert all(level.shape == (2, 36, 48) for level in out.probability_pyramid)
    assert not np.allclose(out.probability_pyramid[2], out.probabilities)  # another input size
    with_background = load_dense_predictor("offline:camvid", background=True)
    out = with_background.predict(image, ["Road", "Sky"])
    assert out.class_names == ("Road", "Sky", "background")
    assert all(level.shape == (3, 36, 48) for level in out.probability_pyramid)
    np.testing.assert_allclose(out.probability_pyramid[1].sum(axis=0), 1.0, atol=1e-5)
    single = predictor.single_scale()
    assert single.pyramid_scales is None and single.single_scale() is single
    assert single.predict(image, ["Road", "Sky"]).probability_pyramid is None
    assert load_dense_predictor("offline:camvid", pyramid_scales=None).pyramid_scales is None
    for bad in ((0.75, 1.0), (0.5, 0.5), (0.5, 0.4)):
        with pytest.raises(ValueError, match="pyramid_scales"):
            OfflineDensePredictor(predictor.segmenter, pyramid_scales=bad)
