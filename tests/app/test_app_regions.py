"""The regions tab's handler: boundaries, merging, a coarse level, metrics vs truth."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.io
from PIL import Image

from clusterlens.app.regions import COARSE_COLOUR, read_truth, run_regions
from clusterlens.app.session import UPLOAD_CHOICE
from clusterlens.viz.render import BOUNDARY_COLOUR


def marked(picture: np.ndarray, colour) -> np.ndarray:
    return (picture == colour).all(axis=2)


def test_regions_draw_boundaries_and_report_the_count(street_file):
    session, picture, rows, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 4)
    assert picture.shape == (96, 128, 3) and rows == []
    count = int(message.split()[0])
    assert 2 <= count <= 8 and "slic" in message
    assert marked(picture[46:50], BOUNDARY_COLOUR).any()  # the sky/road border (row 48)


def test_merging_and_a_coarse_level(street_file):
    _, plain, _, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 60)
    many = int(message.split()[0])
    _, merged, _, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 60, 5.0)
    assert int(message.split()[0]) < many and "under 5% merged" in message
    _, grouped, _, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 60, 0.0, 2)
    assert message.endswith("2 coarse groups (cyan)")
    # two groups: sky and road, split at row 48, drawn in cyan there and nowhere far away
    coarse = marked(grouped, COARSE_COLOUR)
    assert coarse[44:52].any() and not coarse[:30].any()


def test_metrics_against_a_label_image_and_a_bsds_file(street_file, tmp_path):
    truth = np.zeros((96, 128), np.uint8)
    truth[48:] = 1  # sky above, road below
    png = tmp_path / "truth.png"
    Image.fromarray(truth * 255).save(png)
    *_, rows, message = run_regions(
        None, UPLOAD_CHOICE, str(street_file), "slic", 4, truth=str(png)
    )
    scores = {name: float(value) for name, value in rows}
    assert scores["boundary_recall"] == pytest.approx(1.0)  # the one border is found
    assert scores["asa"] == pytest.approx(1.0)
    # a BSDS .mat with two annotators at twice the size: the labels are scaled to it
    big = np.kron(truth + 1, np.ones((2, 2), np.uint16))
    entry = np.empty((1, 2), dtype=object)
    for index in range(2):
        entry[0, index] = {"Segmentation": big, "Boundaries": np.zeros_like(big, bool)}
    mat = tmp_path / "truth.mat"
    scipy.io.savemat(mat, {"groundTruth": entry})
    assert len(read_truth(mat)) == 2
    *_, rows, message = run_regions(
        None, UPLOAD_CHOICE, str(street_file), "slic", 4, truth=str(mat)
    )
    assert dict(rows)["asa"] == "1" and not message.startswith("⚠️")


def test_bad_regions_requests_are_messages(street_file, tmp_path):
    _, picture, _, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "sam", 10)
    assert picture is None and message.startswith("⚠️") and "checkpoint" in message
    tall = tmp_path / "tall.png"
    Image.fromarray(np.zeros((300, 100), np.uint8)).save(tall)
    *_, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 4, truth=str(tall))
    assert "another aspect ratio" in message
    text = tmp_path / "notes.png"
    text.write_text("no image here")
    *_, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 4, truth=str(text))
    assert "cannot read the ground truth" in message
    *_, message = run_regions(None, UPLOAD_CHOICE, str(street_file), "slic", 4, merge_percent=200)
    assert "percentage" in message
