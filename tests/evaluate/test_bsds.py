"""BSDS500 reader: a synthetic .mat file, bad files, and the real data when present."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from clusterlens.evaluate.bsds import bsds_ids, iter_bsds, load_bsds_sample, read_ground_truth


def write_ground_truth(path, segmentations):
    annotations = np.empty((1, len(segmentations)), dtype=object)
    for index, segmentation in enumerate(segmentations):
        boundaries = np.zeros_like(segmentation, dtype=np.uint8)
        boundaries[:, 1:] = segmentation[:, 1:] != segmentation[:, :-1]
        annotations[0, index] = {
            "Segmentation": segmentation.astype(np.uint16),
            "Boundaries": boundaries,
        }
    scipy.io.savemat(path, {"groundTruth": annotations})


@pytest.fixture
def tiny_bsds(tmp_path):
    """bsds500/ with one 4 x 6 val image annotated twice."""
    root = tmp_path / "bsds500"
    (root / "images" / "val").mkdir(parents=True)
    (root / "groundTruth" / "val").mkdir(parents=True)
    Image.fromarray(np.full((4, 6, 3), 200, dtype=np.uint8)).save(root / "images/val/42.jpg")
    first = np.array([[1, 1, 1, 2, 2, 2]] * 4)
    second = np.array([[1, 1, 2, 2, 3, 3]] * 4)
    write_ground_truth(root / "groundTruth/val/42.mat", [first, second])
    # An image without ground truth is not listed.
    Image.fromarray(np.zeros((4, 6, 3), dtype=np.uint8)).save(root / "images/val/7.jpg")
    return root


def test_read_ground_truth_returns_every_annotator_from_zero(tiny_bsds):
    segmentations, boundaries = read_ground_truth(tiny_bsds / "groundTruth/val/42.mat")
    assert len(segmentations) == 2
    assert segmentations[0][0].tolist() == [0, 0, 0, 1, 1, 1]
    assert segmentations[1][0].tolist() == [0, 0, 1, 1, 2, 2]
    assert segmentations[0].dtype == np.int32
    assert boundaries[0].dtype == bool
    assert boundaries[0][0].tolist() == [False, False, False, True, False, False]


def test_iterating_a_split_by_data_root_or_dataset_folder(tiny_bsds):
    assert bsds_ids("val", tiny_bsds) == ["42"]
    assert bsds_ids("val", tiny_bsds.parent) == ["42"]
    (sample,) = list(iter_bsds("val", tiny_bsds))
    assert sample.image_id == "42"
    assert sample.image.shape == (4, 6, 3)
    assert sample.image.dtype == np.float32
    assert len(sample.segmentations) == 2
    assert list(iter_bsds("val", tiny_bsds, limit=0)) == []


def test_bad_split_missing_files_and_bad_mat(tiny_bsds, tmp_path):
    with pytest.raises(ValueError, match="split must be one of"):
        bsds_ids("validation", tiny_bsds)
    with pytest.raises(FileNotFoundError, match="split 'train' not found"):
        bsds_ids("train", tiny_bsds)
    with pytest.raises(FileNotFoundError, match="ground-truth file not found"):
        load_bsds_sample("7", "val", tiny_bsds)
    other = tmp_path / "other.mat"
    scipy.io.savemat(other, {"something": np.zeros(2)})
    with pytest.raises(ValueError, match="no 'groundTruth'"):
        read_ground_truth(other)


def test_real_bsds_val_has_100_images_with_several_annotators(shared_data):
    ids = bsds_ids("val", shared_data)
    assert len(ids) == 100
    sample = load_bsds_sample(ids[0], "val", shared_data)
    assert sample.image.shape in {(321, 481, 3), (481, 321, 3)}
    assert 4 <= len(sample.segmentations) <= 9
    for segmentation in sample.segmentations:
        assert segmentation.shape == sample.image.shape[:2]
        assert segmentation.min() == 0
