"""Derived CamVid instance labels: components -> exact boxes, polygons, a YOLO data set."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml
from PIL import Image

from clusterlens.catalog.camvid_instances import (
    derive_camvid_instances,
    label_map_instances,
    yolo_line,
)
from clusterlens.evaluate.camvid import CLASS_NAMES
from clusterlens.evaluate.datasets import data_root

CAR, PEDESTRIAN, POLE, SIGN, ROAD = (
    CLASS_NAMES.index(n) for n in ("Car", "Pedestrian", "Pole", "SignSymbol", "Road")
)


def _shoelace(polygon: np.ndarray) -> float:
    x, y = polygon[:, 0], polygon[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def _synthetic_label() -> np.ndarray:
    label = np.full((40, 60), ROAD, np.uint8)
    label[5:15, 10:30] = CAR  # 20 x 10 rectangle
    label[20:35, 50] = POLE  # 1 pixel wide, 15 tall
    label[30:33, 2:5] = PEDESTRIAN  # 3 x 3 = 9: a speck under min_area 10
    label[22, 20] = label[23, 21] = SIGN  # diagonal neighbours: one 8-connected component
    label[20:30, 30:40] = CAR  # a car with a 2 x 2 hole (a pole in front)
    label[24:26, 34:36] = POLE
    return label


def test_components_give_exact_boxes_and_polygons():
    instances = label_map_instances(_synthetic_label(), min_area=2)
    summary = [(i.class_name, i.class_id, i.box, i.area) for i in instances]
    assert summary == [
        ("Car", 0, (10, 5, 30, 15), 200),
        ("Car", 0, (30, 20, 40, 30), 96),
        ("Pedestrian", 1, (2, 30, 5, 33), 9),
        ("SignSymbol", 3, (20, 22, 22, 24), 2),
        ("Pole", 4, (50, 20, 51, 35), 15),
        ("Pole", 4, (34, 24, 36, 26), 4),
    ]
    for instance in instances:
        x1, y1, x2, y2 = instance.box
        xs, ys = instance.polygon[:, 0], instance.polygon[:, 1]
        assert (xs.min(), ys.min(), xs.max(), ys.max()) == (x1, y1, x2, y2)
    # the boundary runs along pixel edges, corners cut by half a pixel: area - 4/8
    rectangle, holed, _, _, pole, _ = instances
    assert _shoelace(rectangle.polygon) == 200 - 0.5
    assert _shoelace(pole.polygon) == 15 - 0.5  # a 1-pixel pole keeps its width
    assert _shoelace(holed.polygon) == 100 - 0.5  # the hole is filled (YOLO has no holes)
    assert len(rectangle.polygon) == 8  # straight runs simplified away


def test_min_area_and_class_choice():
    label = _synthetic_label()
    assert [i.class_name for i in label_map_instances(label, min_area=10)] == ["Car", "Car", "Pole"]
    chosen = label_map_instances(label, classes=["Pole", "Car"], min_area=10)
    # ids follow the canonical order of the chosen classes: Car 0, Pole 1
    assert [(i.class_name, i.class_id) for i in chosen] == [("Car", 0), ("Car", 0), ("Pole", 1)]
    with pytest.raises(ValueError, match="accepted: Car, Pedestrian"):
        label_map_instances(label, classes=["Truck"])
    with pytest.raises(ValueError, match="min_area"):
        label_map_instances(label, min_area=0)
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        label_map_instances(np.zeros((4, 4, 3), np.uint8))


def test_yolo_line_is_normalised_polygon():
    label = np.full((40, 80), ROAD, np.uint8)
    label[10:20, 40:80] = CAR  # touches the right border
    (instance,) = label_map_instances(label, min_area=1)
    values = [float(v) for v in yolo_line(instance, 80, 40).split()]
    assert values[0] == 0
    xs, ys = np.array(values[1::2]), np.array(values[2::2])
    assert (xs.min(), xs.max(), ys.min(), ys.max()) == (0.5, 1.0, 0.25, 0.5)


def _fake_camvid(root: Path, frames: int = 2) -> Path:
    """A CamVid-shaped folder: train/val images with label maps."""
    for split in ("train", "val"):
        (root / split).mkdir(parents=True)
        (root / f"{split}annot").mkdir()
        for index in range(frames):
            label = _synthetic_label() if index == 0 else np.full((40, 60), ROAD, np.uint8)
            name = f"{split}_{index:03d}.png"
            Image.fromarray(np.zeros((40, 60, 3), np.uint8)).save(root / split / name)
            Image.fromarray(label).save(root / f"{split}annot" / name)
    return root


def test_derive_writes_a_yolo_segment_dataset(tmp_path):
    camvid = _fake_camvid(tmp_path / "camvid")
    out = tmp_path / "derived"
    report = derive_camvid_instances(out, data=camvid, min_area=10)
    assert report.images == {"train": 2, "val": 2}
    expected = {"Car": 2, "Pedestrian": 0, "Bicyclist": 0, "SignSymbol": 0, "Pole": 1}
    assert report.instances["val"] == expected
    assert report.dropped["val"] == {
        **dict.fromkeys(expected, 0),
        "Pedestrian": 1,
        "SignSymbol": 1,
        "Pole": 1,
    }
    link = out / "images" / "val" / "val_000.png"
    assert link.is_symlink() and link.resolve() == (camvid / "val" / "val_000.png").resolve()
    lines = (out / "labels" / "val" / "val_000.txt").read_text().splitlines()
    assert [line.split()[0] for line in lines] == ["0", "0", "4"]
    assert (out / "labels" / "val" / "val_001.txt").read_text() == ""  # a labelled negative
    data = yaml.safe_load((out / "data.yaml").read_text())
    assert data["path"] == str(out) and data["val"] == "images/val"
    assert data["names"] == {0: "Car", 1: "Pedestrian", 2: "Bicyclist", 3: "SignSymbol", 4: "Pole"}
    assert json.loads((out / "manifest.json").read_text())["settings"]["min_area"] == 10

    again = derive_camvid_instances(out, data=camvid, min_area=10)
    assert again.reused and again.instances == report.instances
    # without data: the folder's own source, whatever $CLUSTERLENS_DATA points to
    assert derive_camvid_instances(out, min_area=10).reused
    changed = derive_camvid_instances(out, data=camvid, min_area=1, classes=["Car"])
    assert not changed.reused and changed.instances["val"] == {"Car": 2}
    assert yaml.safe_load((out / "data.yaml").read_text())["names"] == {0: "Car"}


def test_derive_refuses_bad_input(tmp_path):
    camvid = _fake_camvid(tmp_path / "camvid")
    with pytest.raises(FileNotFoundError, match="no CamVid data at"):
        derive_camvid_instances(tmp_path / "out", data=tmp_path / "nowhere")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="not empty"):
        derive_camvid_instances(foreign, data=camvid)
    assert (foreign / "notes.txt").read_text() == "mine"
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(ValueError, match="is a file"):
        derive_camvid_instances(tmp_path / "a-file", data=camvid)
    with pytest.raises(ValueError, match="unknown CamVid splits"):
        derive_camvid_instances(tmp_path / "out", data=camvid, splits=["trian"])


def test_real_camvid_frame_polygons_cover_their_components():
    root = data_root()
    if root is None or not (root / "camvid" / "valannot").is_dir():
        pytest.skip("CamVid not found (set CLUSTERLENS_DATA to the folder holding camvid/)")
    path = sorted((root / "camvid" / "valannot").glob("*.png"))[0]
    label = np.asarray(Image.open(path))
    instances = label_map_instances(label, min_area=40)
    assert instances, f"{path.name}: expected some cars / poles / signs"
    for instance in instances:
        x1, y1, x2, y2 = instance.box
        component = label[y1:y2, x1:x2] == CLASS_NAMES.index(instance.class_name)
        drawn = np.zeros((y2 - y1, x2 - x1), np.uint8)
        cv2.fillPoly(drawn, [np.round(instance.polygon - (x1, y1)).astype(np.int32)], 1)
        # the box may hold other components of the class; the polygon covers its own
        covered = (drawn.astype(bool) & component).sum()
        assert covered >= 0.8 * instance.area, (instance.class_name, instance.box)
