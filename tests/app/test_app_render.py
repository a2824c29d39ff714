"""In-memory pictures for the app: overlay, heat map, boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.allocate import allocate
from clusterlens.viz.allocation import DIM
from clusterlens.viz.render import (
    BOUNDARY_COLOUR,
    KEPT_BORDER_COLOUR,
    allocation_overlay,
    boundary_overlay,
    heat_map,
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
