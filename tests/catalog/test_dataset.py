"""Image folders and YOLO label files."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.catalog.dataset import (
    LabelSet,
    UnreadableImageError,
    load_rgb,
    read_labels,
    scan_dataset,
)


def test_yolo_layout_pairs_images_with_labels(shapes_dir):
    entries = scan_dataset(shapes_dir)
    assert len(entries) == 12
    assert all(
        e.label_path == shapes_dir.resolve() / "labels" / f"{e.path.stem}.txt" for e in entries
    )
    labels = read_labels(entries[0].label_path)
    assert isinstance(labels, LabelSet) and len(labels) >= 1
    assert labels.boxes.shape == (len(labels), 4)
    assert ((labels.boxes >= 0) & (labels.boxes <= 1)).all()


def test_polygons_give_their_bounding_box(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text("2 0.1 0.2 0.5 0.2 0.3 0.6\n0 0.5 0.5 0.2 0.4\n\n")
    labels = read_labels(path)
    assert labels.classes.tolist() == [2, 0]
    np.testing.assert_allclose(labels.boxes[0], [0.3, 0.4, 0.4, 0.4], atol=1e-6)
    assert labels.polygons[0].shape == (3, 2) and labels.polygons[1] is None


def test_missing_label_file_means_no_objects_and_no_dir_means_unlabelled(tmp_path):
    assert len(read_labels(tmp_path / "absent.txt")) == 0
    assert read_labels(None) is None
    Image.new("RGB", (8, 8)).save(tmp_path / "x.png")
    assert scan_dataset(tmp_path)[0].label_path is None


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("0 0.5 0.5 0.2", "expected"),
        ("a 0.5 0.5 0.2 0.2", "not numbers"),
        ("0 0.5 0.5 1.9 0.2", "0..1"),
        ("0 nan 0.5 0.2 0.2", "finite"),
        ("1 0.1 0.1 0.5 inf 0.9 0.9", "finite"),
    ],
)
def test_malformed_labels_name_file_and_line(tmp_path, line, message):
    path = tmp_path / "bad.txt"
    path.write_text(f"0 0.5 0.5 0.1 0.1\n{line}\n")
    with pytest.raises(ValueError, match=message) as info:
        read_labels(path)
    assert "bad.txt:2" in str(info.value)


def test_bad_folders_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        scan_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="no images"):
        scan_dataset(tmp_path)
    (tmp_path / "broken.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(UnreadableImageError, match="cannot decode"):
        load_rgb(tmp_path / "broken.jpg")


def test_grayscale_rgba_and_16_bit_become_rgb(tmp_path):
    Image.new("L", (5, 4), 7).save(tmp_path / "g.png")
    Image.new("RGBA", (5, 4), (1, 2, 3, 4)).save(tmp_path / "a.png")
    Image.fromarray(np.full((4, 5), 40000, np.uint16)).save(tmp_path / "s.png")
    Image.new("RGB", (5, 4), (0, 128, 255)).save(tmp_path / "c.png")
    # alpha 4/255 over white; 16-bit scaled by 1/65535; 8-bit values unchanged
    expected = {"g.png": 7, "a.png": (251, 251, 251), "s.png": 156, "c.png": (0, 128, 255)}
    for name, values in expected.items():
        image = load_rgb(tmp_path / name)
        assert image.shape == (4, 5, 3) and image.dtype == np.uint8
        assert (image == np.asarray(values, np.uint8)).all(), (name, image[0, 0])
