"""yolo: loader -- architectures from yaml, checkpoints from disk only."""

from __future__ import annotations

import os

import pytest
import torch

from clusterlens.models import ModelNotFoundError, UnknownModelError, load_model
from clusterlens.models.yolo import load_yolo
from clusterlens.models.yolo_checkpoint import save_yolo_checkpoint


@pytest.fixture(scope="module")
def segment():
    torch.set_num_threads(1)
    return load_model("yolo:yolov8n-seg.yaml")


def test_yaml_builds_the_real_segment_network_offline(segment):
    assert segment.task == "segment" and segment.random_weights
    assert os.environ["YOLO_OFFLINE"] == "1" and os.environ["YOLO_AUTOINSTALL"] == "False"
    assert segment.num_classes == 80 and segment.stride == 32
    # backbone output (SPPF) first, then the three inputs of the Segment head
    assert segment.hooked_layers == ["model.9", "model.15", "model.18", "model.21"]
    assert type(segment.model.model[-1]).__name__ == "Segment"
    assert segment.model.args.box > 0 and segment.model.args.overlap_mask is False


def test_yaml_weights_are_the_same_at_every_load(segment):
    again = load_yolo("yolov8n-seg.yaml")
    for mine, theirs in zip(segment.model.parameters(), again.model.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_detect_architecture():
    bundle = load_yolo("yolov8n.yaml")
    assert bundle.task == "detect" and type(bundle.model.model[-1]).__name__ == "Detect"


def test_checkpoint_round_trip(segment, tmp_path):
    # the safe format (tests/models/test_yolo_checkpoint.py); a pickled model is refused
    path = tmp_path / "mine.pt"
    segment.model.args.box = 5.0
    save_yolo_checkpoint(segment.model, path, half=False)
    segment.model.args.box = 7.5
    loaded = load_model(f"yolo:{path}")
    assert not loaded.random_weights and loaded.model.args.box == 5.0
    pixels = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(loaded.model(pixels)[0][0], segment.model(pixels)[0][0], atol=1e-5)


def test_missing_checkpoint_is_not_downloaded(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelNotFoundError, match="cannot download") as info:
        load_model("yolo:yolov8n-seg.pt")
    assert str(tmp_path) in str(info.value)
    assert not (tmp_path / "yolov8n-seg.pt").exists()


def test_bad_specs():
    with pytest.raises(UnknownModelError, match=r"\.pt"):
        load_yolo("yolov8n-seg")
    with pytest.raises(UnknownModelError):
        load_yolo("no-such-arch.yaml")
    with pytest.raises(UnknownModelError, match="'classify' model; supported: detect, segment"):
        load_yolo("yolov8n-cls.yaml")


def test_loading_yolo_leaves_pillow_alone(segment, tmp_path):
    """ultralytics patches PIL.Image.open process-wide; the loader undoes it."""
    from PIL import Image, UnidentifiedImageError

    assert Image.open.__module__ == "PIL.Image"
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(UnidentifiedImageError):
        Image.open(tmp_path / "junk.png")
