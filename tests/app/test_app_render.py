"""In-memory pictures for the app: overlay, heat map, boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.allocate import allocate
from clusterlens.viz.allocation import DIM
from clusterlens.viz.render import (
    BOUNDARY_COLOUR,
    GAZE_COLOUR,
    KEPT_BORDER_COLOUR,
    allocation_overlay,
    boundary_overlay,
    heat_map,
    label_picture,
    mark_gaze,
    palette,
    points_on,
    predictions_on,
    token_map,
)


def test_overlay_keeps_the_chosen_patch_and_dims_the_rest():
    image = np.full((64, 64, 3), 0.8, np.float32)
    relevance = np.zeros((1, 64, 64), np.float32)
    relevance[0, :16, :16] = 1.0  # the top-left cell of a 4x4 grid is the only relevant one
    allocation = allocate(relevance, "topk", 1, grid=4)
    picture = allocation_overlay(image, allocation)
    assert picture.shape == (64, 64, 3) and picture.dtype == np.uint8
    assert (picture[5:11, 5:11] == 204).all()  # inside the kept patch: untouched 0.8
    assert (picture[40:, 40:] == round(0.8 * DIM * 255)).all()  # dropped: dimmed
    # one budget for all: only the kept area's border is drawn, inside it
    assert (picture[15, :16] == KEPT_BORDER_COLOUR).all()
    assert (picture[:16, 15] == KEPT_BORDER_COLOUR).all()


def test_overlay_colours_each_patch_by_its_token_budget():
    image = np.full((64, 64, 3), 0.5, np.float32)
    relevance = np.zeros((1, 64, 64), np.float32)
    relevance[0, :16, :16] = 1.0  # the best cell: the largest budget
    relevance[0, 48:, 48:] = 0.3
    allocation = allocate(relevance, "topk", 2, grid=4, token_budget=1000)
    assert len(set(allocation.budgets.tolist())) == 2
    picture = allocation_overlay(image, allocation)
    best, second = picture[0, 0], picture[48, 48]  # each outline's top-left corner
    assert (best != second).any()
    assert best[1] > second[1]  # viridis: the higher budget is the greener/yellower end


def test_heat_map_scales_by_peak_and_keeps_zero_dark():
    values = np.array([[0.0, 0.25], [0.5, 0.5]], np.float32)
    picture = heat_map(values)
    assert picture.shape == (2, 2, 3) and picture.dtype == np.uint8
    assert (picture[0, 0] < 10).all()  # magma starts black
    assert (picture[1, 0] == picture[1, 1]).all()  # the two peaks share the top colour
    assert picture[1, 0].sum() > picture[0, 1].sum()
    blank = heat_map(np.zeros((3, 3), np.float32))
    assert (blank == picture[0, 0]).all()  # an all-zero map is all the bottom colour
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        heat_map(np.zeros((3, 3, 3)))


def test_boundary_overlay_marks_only_the_border_between_regions():
    labels = np.zeros((8, 8), np.int64)
    labels[:, 4:] = 1
    picture = boundary_overlay(np.zeros((8, 8, 3), np.float32), labels)
    marked = (picture == BOUNDARY_COLOUR).all(axis=2)
    assert marked[:, 3].all() and marked[:, 4].all()
    assert not marked[:, :3].any() and not marked[:, 5:].any()
    with pytest.raises(ValueError, match="do not match"):
        boundary_overlay(np.zeros((8, 9, 3), np.float32), labels)


def test_token_map_draws_each_patch_with_area_proportional_to_its_tokens():
    image = np.zeros((64, 64, 3), np.float32)
    image[:16, :16] = 1.0  # the best cell is white, the other kept one black
    relevance = np.zeros((1, 64, 64), np.float32)
    relevance[0, :16, :16] = 1.0
    relevance[0, 48:, 48:] = 0.3
    allocation = allocate(relevance, "topk", 2, grid=4, token_budget=1000)
    big, small = sorted(allocation.budgets.tolist(), reverse=True)
    picture = token_map(image, allocation, side=200)
    assert picture.shape[1] == 200 and picture.dtype == np.uint8
    white = int((picture == 255).all(axis=2).sum())  # the best patch, as drawn
    black = int((picture == 0).all(axis=2).sum())  # the other (the canvas is 24 grey)
    assert white / black == pytest.approx(big / small, rel=0.15)


def test_token_map_of_nothing_kept_is_an_empty_strip():
    allocation = allocate(np.zeros((1, 8, 8), np.float32), "topk", 0, grid=2)
    assert token_map(np.zeros((8, 8, 3), np.float32), allocation, side=40).shape == (10, 40, 3)


def test_gaze_mark_labels_and_predictions():
    picture = mark_gaze(np.zeros((40, 40, 3), np.uint8), (0.25, 0.75))
    assert (picture[30, 10] == GAZE_COLOUR).all()  # the cross's centre: x 10, y 30
    colours = palette(3)
    assert colours.shape == (3, 3) and len({tuple(c) for c in colours}) == 3
    labels = np.array([[0, 1], [2, 2]])
    assert (label_picture(labels, colours)[1, 0] == colours[2]).all()
    with pytest.raises(ValueError, match="colours"):
        label_picture(labels, colours[:2])
    image = np.zeros((50, 60, 3), np.uint8)
    mask = np.zeros((50, 60), np.uint8)
    mask[10:20, 10:20] = 255
    drawn = predictions_on(image, np.array([[5.0, 5, 40, 40]]), ["car"], colours[:1], [mask])
    assert drawn[15, 15].any() and not drawn[30, 30].any()  # mask tinted, box's inside not
    assert (drawn[5, 20] == colours[0]).all()  # the box's top edge
    dotted = points_on(image, np.array([[20.0, 10.0]]), colours[1:2], scale=0.5)
    assert (dotted[5, 10] == colours[1]).all()


def test_accounting_alone_is_to_json_s_accounting():
    # the app reads Allocation.accounting() on every re-render instead of to_json()
    relevance = np.random.default_rng(0).random((1, 32, 32)).astype(np.float32)
    allocation = allocate(relevance, "topk", 5, grid=4, token_budget=100)
    allocation.cost = {"total_ms": 1.5, "cached": ["decoded image"]}
    assert allocation.accounting() == allocation.to_json()["accounting"]
