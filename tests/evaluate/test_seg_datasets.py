"""Data-set loaders on tiny generated folders of each layout (and the real CamVid)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.evaluate.seg_datasets import (
    CITYSCAPES_CLASSES,
    COCOSTUFF_CLASSES,
    VOC_CLASSES,
    load_seg_dataset,
)


def save_rgb(path, shape=(6, 8)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((*shape, 3), 90, np.uint8)).save(path)


def save_label(path, values, palette=False):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(np.asarray(values, np.uint8))
    if palette:
        image = image.convert("P")
    image.save(path)


def test_voc_layout_reads_ids_and_palette_labels(tmp_path):
    base = tmp_path / "VOCdevkit" / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("2007_000001\n2007_000002\n")
    for stem, value in (("2007_000001", 15), ("2007_000002", 7)):
        save_rgb(base / "JPEGImages" / f"{stem}.jpg")
        label = np.full((6, 8), value)
        label[0] = 255
        save_label(base / "SegmentationClass" / f"{stem}.png", label, palette=True)
    data = load_seg_dataset("voc", tmp_path, "val")
    assert len(data) == 2 and data.class_names == VOC_CLASSES and data.ignore_index == 255
    image, label = data[0]
    assert image.shape == (6, 8, 3) and image.dtype == np.float32
    assert set(np.unique(label)) == {15, 255}
    assert VOC_CLASSES[15] == "person"


def test_cocostuff_maps_raw_ids_to_171_classes_and_reads_train_ids(tmp_path):
    base = tmp_path / "cocostuff"
    save_rgb(base / "images" / "val2017" / "000000000001.jpg")
    save_rgb(base / "images" / "val2017" / "000000000002.jpg")
    raw = np.array([[0, 11, 12, 181, 255, 91, 90, 89]] * 6)  # 11 and 90 are unused ids
    save_label(base / "annotations" / "val2017" / "000000000001.png", raw)
    save_label(
        base / "annotations" / "val2017" / "000000000002_labelTrainIds.png", np.full((6, 8), 170)
    )
    data = load_seg_dataset("cocostuff", tmp_path, "val")
    assert data.num_classes == len(COCOSTUFF_CLASSES) == 171
    _, label = data[0]
    assert label[0].tolist() == [0, 255, 11, 170, 255, 80, 255, 79]
    assert COCOSTUFF_CLASSES[11] == "stop sign" and COCOSTUFF_CLASSES[80] == "banner"
    assert COCOSTUFF_CLASSES[170] == "wood"
    assert data[1][1].max() == 170


def test_cityscapes_maps_label_ids_and_prefers_train_ids(tmp_path):
    base = tmp_path / "cityscapes"
    save_rgb(base / "leftImg8bit" / "val" / "aachen" / "aachen_000000_000019_leftImg8bit.png")
    save_label(
        base / "gtFine" / "val" / "aachen" / "aachen_000000_000019_gtFine_labelIds.png",
        np.array([[7, 8, 26, 33, 0, 1, 23, 24]] * 6),
    )
    save_rgb(base / "leftImg8bit" / "val" / "bonn" / "bonn_000000_000001_leftImg8bit.png")
    save_label(
        base / "gtFine" / "val" / "bonn" / "bonn_000000_000001_gtFine_labelTrainIds.png",
        np.full((6, 8), 13),
    )
    data = load_seg_dataset("cityscapes", base, "val")
    assert data.class_names == CITYSCAPES_CLASSES and len(data) == 2
    assert data[0][1][0].tolist() == [0, 1, 13, 18, 255, 255, 10, 11]
    assert (data[1][1] == 13).all()
    assert data.subset(1).pairs == data.pairs[:1]


def test_missing_layouts_and_unknown_names_are_explained(tmp_path):
    with pytest.raises(ValueError, match="unknown data set 'ade'"):
        load_seg_dataset("ade", tmp_path)
    with pytest.raises(FileNotFoundError, match="expected"):
        load_seg_dataset("voc", tmp_path)
    with pytest.raises(FileNotFoundError, match="needs its folder"):
        load_seg_dataset("cityscapes")
    (tmp_path / "cityscapes" / "gtFine" / "val").mkdir(parents=True)
    (tmp_path / "cityscapes" / "leftImg8bit" / "val").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no labelled image"):
        load_seg_dataset("cityscapes", tmp_path, "val")


def test_mismatched_image_and_label_sizes_raise(tmp_path):
    base = tmp_path / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "train.txt").write_text("a\n")
    save_rgb(base / "JPEGImages" / "a.jpg", (6, 8))
    save_label(base / "SegmentationClass" / "a.png", np.zeros((5, 8)))
    with pytest.raises(ValueError, match="but label"):
        load_seg_dataset("voc", tmp_path, "train")[0]


def test_subset_keeps_the_first_pairs_and_rejects_non_positive_counts(tmp_path):
    base = tmp_path / "VOC2012"
    (base / "ImageSets" / "Segmentation").mkdir(parents=True)
    (base / "ImageSets" / "Segmentation" / "val.txt").write_text("a\nb\nc\n")
    for stem in "abc":
        save_rgb(base / "JPEGImages" / f"{stem}.jpg")
        save_label(base / "SegmentationClass" / f"{stem}.png", np.zeros((6, 8)))
    data = load_seg_dataset("voc", tmp_path, "val")
    first_two = data.subset(2)
    assert [pair[0].stem for pair in first_two.pairs] == ["a", "b"]
    assert first_two.class_names == data.class_names and first_two.split == "val"
    assert len(data.subset(None)) == 3 and len(data.subset(10)) == 3
    with pytest.raises(ValueError, match="positive integer"):
        data.subset(0)


def test_camvid_reuses_the_camvid_reader(shared_data):
    data = load_seg_dataset("camvid", shared_data, "val")
    assert len(data) == 101 and data.num_classes == 11 and data.ignore_index == 11
    image, label = data[0]
    assert image.shape == (360, 480, 3) and label.shape == (360, 480)
    assert label.max() <= 11


def test_camvid_root_with_only_the_test_split_is_accepted(tmp_path):
    base = tmp_path / "camvid"
    for folder in ("test", "testannot"):
        (base / folder).mkdir(parents=True)
    Image.fromarray(np.zeros((6, 8, 3), np.uint8)).save(base / "test" / "a.png")
    Image.fromarray(np.full((6, 8), 3, np.uint8)).save(base / "testannot" / "a.png")
    data = load_seg_dataset("camvid", tmp_path, "test")
    image, label = data[0]
    assert len(data) == 1 and image.shape == (6, 8, 3) and (label == 3).all()
