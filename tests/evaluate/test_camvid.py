"""The CamVid reader: split listing, pairing, value checks."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.evaluate.camvid import (
    CLASS_NAMES,
    IGNORE_INDEX,
    camvid_dir,
    list_pairs,
    load_label,
    load_pair,
)


def test_class_list_is_the_segnet_eleven():
    assert len(CLASS_NAMES) == 11 and IGNORE_INDEX == 11
    assert CLASS_NAMES[3] == "Road" and CLASS_NAMES[8] == "Car"


@pytest.mark.parametrize(("split", "count"), [("train", 367), ("val", 101)])
def test_splits_have_the_segnet_sizes(shared_data, split, count):
    pairs = list_pairs(split, shared_data)
    assert len(pairs) == count
    assert all(image.name == label.name for image, label in pairs)
    assert pairs == sorted(pairs)


def test_pair_loads_as_float_image_and_uint8_labels(shared_data):
    image, label = load_pair(*list_pairs("val", shared_data)[0])
    assert image.shape == (360, 480, 3) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert label.shape == (360, 480) and label.dtype == np.uint8
    assert label.max() <= IGNORE_INDEX
    assert len(np.unique(label)) >= 5  # a street scene shows many classes


def test_camvid_folder_itself_is_accepted(shared_data):
    assert camvid_dir(shared_data / "camvid") == shared_data / "camvid"
    assert camvid_dir(shared_data) == shared_data / "camvid"


def test_unknown_split_is_a_value_error():
    with pytest.raises(ValueError, match="train, val, test"):
        list_pairs("training")


def test_missing_split_folder_names_the_folders(tmp_path):
    (tmp_path / "camvid" / "trainannot").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="valannot"):
        list_pairs("val", tmp_path)


def test_image_without_label_is_reported(tmp_path):
    base = tmp_path / "camvid"
    for folder in ("train", "trainannot"):
        (base / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(base / "train" / "a.png")
    with pytest.raises(FileNotFoundError, match="a.png"):
        list_pairs("train", base)


def test_label_with_out_of_range_value_is_rejected(tmp_path):
    path = tmp_path / "label.png"
    Image.fromarray(np.full((2, 2), 12, np.uint8)).save(path)
    with pytest.raises(ValueError, match="0..11"):
        load_label(path)


def test_explicit_path_without_camvid_is_an_error_not_a_fallback(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        camvid_dir(tmp_path)


@pytest.mark.parametrize("nested", [True, False])
def test_a_test_only_copy_is_accepted(tmp_path, nested):
    base = tmp_path / "camvid" if nested else tmp_path
    for folder in ("test", "testannot"):
        (base / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(base / "test" / "a.png")
    Image.fromarray(np.zeros((4, 4), np.uint8)).save(base / "testannot" / "a.png")
    assert camvid_dir(tmp_path) == base
    assert list_pairs("test", tmp_path) == [(base / "test" / "a.png", base / "testannot" / "a.png")]
    with pytest.raises(FileNotFoundError, match="valannot"):
        list_pairs("val", tmp_path)  # the split asked for is still required
