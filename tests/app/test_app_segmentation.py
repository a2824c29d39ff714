"""The segmentation tab's handler: MHQR with the page's toggles, before/after refinement."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.app.segmentation import (
    SegmentSettings,
    legend_html,
    parse_classes,
    run_segmentation,
    segment_image,
)
from clusterlens.app.session import UPLOAD_CHOICE

CLASSES = "sky, road, building"


@pytest.fixture
def street_rgb(street_file) -> np.ndarray:
    return np.asarray(Image.open(street_file).convert("RGB"))


@pytest.mark.slow  # the offline model (a few seconds)
def test_after_is_what_the_full_pipeline_gives(street_rgb):
    from clusterlens.segment import MHQRSegmenter

    found = segment_image(street_rgb, SegmentSettings(classes=CLASSES))
    reference = MHQRSegmenter.offline().segment(street_rgb, ["sky", "road", "building"])
    np.testing.assert_array_equal(found["after"], reference.labels)
    assert found["classes"] == ["sky", "road", "building"]
    assert len(found["points"]) == len(found["point_classes"]) > 0
    assert set(found["seconds"]) >= {"dense", "queries", "proposals", "refinement", "merging"}


@pytest.mark.slow
def test_page_pictures_legend_and_toggles(street_file):
    session, result, message = run_segmentation(
        None, UPLOAD_CHOICE, str(street_file), SegmentSettings(classes=CLASSES)
    )
    assert "prompts" in message and "refinement changed" in message
    for key in ("prompts", "labels", "before", "after"):
        assert result[key].shape == (96, 128, 3) and result[key].dtype == np.uint8
    assert "sky" in result["legend"] and "%" in result["legend"]
    # the top half is sky: its colour (tab10's first) fills the label map's top rows
    assert (result["labels"][5, 5] == (31, 119, 180)).all()
    off = SegmentSettings(classes=CLASSES, hierarchical=False, merging=False)
    _, plain, message = run_segmentation(session, UPLOAD_CHOICE, str(street_file), off)
    assert "refinement off" in message
    np.testing.assert_array_equal(plain["before"], plain["after"])
    assert len(session.contexts) == 1  # the image was decoded once for both runs


def test_bad_classes_and_missing_weights_are_messages(street_file):
    _, result, message = run_segmentation(
        None, UPLOAD_CHOICE, str(street_file), SegmentSettings(classes=" , ")
    )
    assert result is None and message.startswith("⚠️") and "no classes" in message
    missing = SegmentSettings(classes=CLASSES, model="open_clip:ViT-B-16/laion2b_s34b_b88k")
    _, result, message = run_segmentation(None, UPLOAD_CHOICE, str(street_file), missing)
    assert result is None and "ViT-B-16" in message and "not on this machine" in message
    _, result, message = run_segmentation(
        None, UPLOAD_CHOICE, str(street_file), SegmentSettings(proposer="sam:/nowhere/sam.pth")
    )
    assert result is None and message.startswith("⚠️") and "/nowhere/sam.pth" in message


def test_classes_and_legend():
    assert parse_classes(" sky,road , sky,, car ") == ["sky", "road", "car"]
    colours = np.array([[255, 0, 0], [0, 0, 255]], np.uint8)
    legend = legend_html(["a<b", "road"], colours, np.array([[1, 1, 1, 0]]))
    assert legend.index("road 75.0%") < legend.index("a&lt;b 25.0%")  # largest first, escaped
    assert "rgb(0,0,255)" in legend
