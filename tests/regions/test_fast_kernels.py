"""The Numba kernels behind the ``fast`` backend, checked against reference libraries."""

from __future__ import annotations

import numpy as np
import pytest
from skimage.color import rgb2lab
from skimage.measure import label as skimage_label

from clusterlens.regions import _fast_kernels as kernels


def test_rgb_to_lab_matches_scikit_image_on_8bit_colours():
    rng = np.random.default_rng(0)
    rgb = (rng.integers(0, 256, (40, 30, 3)) / 255.0).astype(np.float32)
    rgb[0, 0] = (0, 0, 0)
    rgb[0, 1] = (1, 1, 1)
    ours = kernels.rgb_to_lab(rgb)
    # lookup-table interpolation error: 0.0047 measured over every 7th of the 2^24 colours
    assert np.abs(ours - rgb2lab(rgb)).max() < 0.005
    assert ours[0, 1, 0] == pytest.approx(100.0, abs=0.01)


def test_rgb_to_lab_clamps_values_outside_the_unit_range():
    rgb = np.array([[[-0.5, 2.0, 0.5]]], dtype=np.float32)
    clamped = np.array([[[0.0, 1.0, 0.5]]], dtype=np.float32)
    np.testing.assert_allclose(kernels.rgb_to_lab(rgb), kernels.rgb_to_lab(clamped))


@pytest.mark.parametrize("seed", range(5))
def test_connected_pieces_is_the_same_partition_as_scikit_image(seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, (23, 17)).astype(np.int32)
    pieces, sizes, owners = kernels.connected_pieces(labels)
    reference = skimage_label(labels, background=-1, connectivity=1)
    pairs = set(zip(pieces.ravel().tolist(), reference.ravel().tolist(), strict=True))
    assert len(pairs) == pieces.max() + 1 == reference.max()  # a bijection of pieces
    np.testing.assert_array_equal(np.bincount(pieces.ravel()), sizes)
    np.testing.assert_array_equal(owners[pieces], labels)


def test_connected_pieces_joins_a_u_shape_through_its_bottom_row():
    labels = np.array([[0, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=np.int32)
    pieces, sizes, _ = kernels.connected_pieces(labels)
    assert sorted(sizes.tolist()) == [2, 7]
    assert pieces[0, 0] == pieces[0, 2]


def test_absorb_orphans_moves_whole_pieces_into_a_settled_neighbour():
    labels = np.array([[0, 0, 1, 1], [0, 1, 1, 1], [0, 0, 0, 0], [1, 0, 0, 0]], dtype=np.int32)
    pieces, sizes, owners = kernels.connected_pieces(labels)
    keep = np.zeros(len(sizes), dtype=bool)
    for owner in np.unique(owners):  # the largest piece of each label stays
        mine = np.flatnonzero(owners == owner)
        keep[mine[np.argmax(sizes[mine])]] = True
    result = kernels.absorb_orphans(pieces, owners, keep)
    assert result[3, 0] == 0  # the lone 1 in the corner joined the 0 region around it
    for value in np.unique(result):
        assert skimage_label(result == value, connectivity=1).max() == 1


def test_consecutive_renumbers_without_changing_the_partition():
    labels = np.array([[7, 7, 3], [9, 3, 3]], dtype=np.int32)
    np.testing.assert_array_equal(kernels.consecutive(labels), [[1, 1, 0], [2, 0, 0]])


def test_refine_boundaries_puts_a_colour_edge_back_on_its_pixel():
    # a vertical red|blue edge at column 13 (not a multiple of the factor 4)
    rgb = np.zeros((16, 24, 3), dtype=np.float32)
    rgb[:, :13, 0] = 1.0
    rgb[:, 13:, 2] = 1.0
    coarse = np.zeros((4, 6), dtype=np.int32)
    coarse[:, 3:] = 1  # the coarse level put the edge at column 12
    lab = kernels.rgb_to_lab(rgb)
    centres = np.array(
        [[*lab[0, 0], 1.5, 1.5], [*lab[0, 20], 1.5, 4.5]], dtype=np.float32
    )  # (L, a, b, y, x) in coarse pixel units
    refined = kernels.refine_boundaries(rgb, coarse, centres, 4, np.float32(0.0))
    expected = np.zeros((16, 24), dtype=np.int32)
    expected[:, 13:] = 1
    np.testing.assert_array_equal(refined, expected)


def test_cell_slic_separates_two_flat_halves():
    lab = np.zeros((12, 12, 3), dtype=np.float32)
    lab[:, 6:, 0] = 80.0
    labels = kernels.cell_slic(lab, 6, 6, np.float32(0.01), 3)
    assert len(np.unique(labels[:, :6])) <= 2 and len(np.unique(labels[:, 6:])) <= 2
    assert not set(np.unique(labels[:, :6])) & set(np.unique(labels[:, 6:]))
