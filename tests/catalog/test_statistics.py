"""Robust z-scores and cosine nearest neighbours, the degenerate cases included."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from clusterlens.catalog import statistics
from clusterlens.catalog.statistics import (
    FAISS_FROM,
    MAD_TO_SIGMA,
    MEAN_ABSOLUTE_DEVIATION_TO_SIGMA,
    nearest_neighbours,
    robust_z,
)


@pytest.fixture(autouse=True)
def no_runtime_warnings():
    """A degenerate input must be handled, not warned about (nanmedian of nothing...)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


# ---------------------------------------------------------------------- robust_z


def test_robust_z_ignores_one_extreme_value():
    values = np.array([1.0, 1.1, 0.9, 1.0, 1.05, 0.95, 50.0])
    z = robust_z(values)
    assert z[-1] > 100 and np.all(np.abs(z[:-1]) < 2)
    # median 1.0, MAD 0.05: the spread is 1.4826 * 0.05
    np.testing.assert_allclose(z[1], 0.1 / (MAD_TO_SIGMA * 0.05))


def test_robust_z_of_constant_values_is_zero():
    np.testing.assert_array_equal(robust_z(np.full(4, 3.5)), np.zeros(4))
    np.testing.assert_array_equal(robust_z([7.0]), [0.0])


def test_robust_z_with_zero_mad_uses_the_mean_absolute_deviation():
    values = np.array([1.0, 1.0, 1.0, 1.0, 2.0, 3.0])  # 4 of 6 equal: MAD 0
    spread = MEAN_ABSOLUTE_DEVIATION_TO_SIGMA * np.mean([0, 0, 0, 0, 1, 2])
    np.testing.assert_allclose(robust_z(values), (values - 1.0) / spread)
    assert robust_z(values)[-1] == pytest.approx(3.19, abs=0.01)


def test_robust_z_keeps_nan_and_infinity_out_of_the_statistics():
    values = np.array([1.0, np.nan, 1.1, 0.9, np.inf, 1.0, -np.inf])
    z = robust_z(values)
    np.testing.assert_allclose(z[[0, 2, 3, 5]], robust_z(np.array([1.0, 1.1, 0.9, 1.0])))
    assert np.isnan(z[1]) and z[4] == np.inf and z[6] == -np.inf
    constant = robust_z(np.array([2.0, np.nan, 2.0]))
    assert constant[0] == 0.0 and np.isnan(constant[1])


def test_robust_z_without_finite_values_is_all_nan():
    assert np.isnan(robust_z(np.array([np.nan, np.nan]))).all()
    assert robust_z(np.array([])).shape == (0,)


def test_robust_z_takes_one_dimension_only():
    with pytest.raises(ValueError, match="1-D array"):
        robust_z(np.ones((2, 3)))


# ---------------------------------------------------------------------- nearest_neighbours


def _brute_force(vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    similarity = unit @ unit.T
    np.fill_diagonal(similarity, -np.inf)
    order = np.lexsort((np.broadcast_to(np.arange(len(unit)), similarity.shape), -similarity))
    rows = order[:, :k]
    return np.take_along_axis(similarity, rows, axis=1), rows


def test_neighbours_are_the_most_similar_other_rows_best_first():
    vectors = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9]], float)
    similarities, rows = nearest_neighbours(vectors, 1)
    np.testing.assert_array_equal(rows[:, 0], [1, 0, 3, 2])
    cosine = 0.9 / np.hypot(0.9, 0.1)
    np.testing.assert_allclose(similarities[:, 0], cosine)
    _, rows = nearest_neighbours(vectors, 3)
    np.testing.assert_array_equal(rows[0], [1, 3, 2])  # by similarity, highest first


def test_neighbours_match_brute_force_whatever_the_block_size():
    """The blocks bound the memory; they never change the answer."""
    vectors = np.random.default_rng(0).normal(size=(37, 6))
    expected_similarities, expected_rows = _brute_force(vectors, 5)
    for block_elements in (1, 37, 37 * 5 + 3, 1 << 24):  # one row a block ... all at once
        similarities, rows = nearest_neighbours(vectors, 5, block_elements=block_elements)
        np.testing.assert_array_equal(rows, expected_rows)
        np.testing.assert_allclose(similarities, expected_similarities)


def test_fewer_rows_than_k_gives_every_other_row():
    vectors = np.eye(3)
    similarities, rows = nearest_neighbours(vectors, 5)
    assert rows.shape == similarities.shape == (3, 2)
    assert all(sorted(rows[i]) == [j for j in range(3) if j != i] for i in range(3))
    single = nearest_neighbours(np.ones((1, 4)), 5)
    assert single[0].shape == single[1].shape == (1, 0)
    empty = nearest_neighbours(np.zeros((0, 4)), 5)
    assert empty[0].shape == empty[1].shape == (0, 0)


def test_an_exact_duplicate_is_a_neighbour_never_itself():
    vectors = np.array([[1.0, 2.0], [1.0, 2.0], [2.0, -1.0]])
    similarities, rows = nearest_neighbours(vectors, 1)
    np.testing.assert_array_equal(rows[:, 0], [1, 0, 0])
    np.testing.assert_allclose(similarities[:2, 0], 1.0)


def test_zero_vectors_have_cosine_zero_with_everything():
    vectors = np.array([[0.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.9, 0.1]])
    similarities, rows = nearest_neighbours(vectors, 3)
    np.testing.assert_array_equal(similarities[0], [0.0, 0.0, 0.0])  # not a duplicate of row 1
    np.testing.assert_array_equal(rows[0], [1, 2, 3])  # all tied: lowest index first
    np.testing.assert_array_equal(rows[2], [3, 0, 1])  # the two zero vectors last, tied


def test_ties_at_the_kth_place_keep_the_lowest_indices():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    _, rows = nearest_neighbours(vectors, 2)
    np.testing.assert_array_equal(rows[0], [1, 2])  # rows 1-4 tie at cosine 0
    np.testing.assert_array_equal(rows[4], [1, 2])  # 1, 2, 3 tie at cosine 1


def test_float32_stays_float32_other_input_is_float64():
    vectors = np.random.default_rng(1).normal(size=(6, 3))
    assert nearest_neighbours(vectors.astype(np.float32), 2)[0].dtype == np.float32
    assert nearest_neighbours(vectors.astype(np.int64) + 1, 2)[0].dtype == np.float64


@pytest.mark.parametrize(
    ("vectors", "k", "message"),
    [
        (np.ones(4), 1, "must be 2-D"),
        (np.array([[1.0, np.nan], [1.0, 0.0]]), 1, "NaN or infinity"),
        (np.ones((3, 2)), 0, "k must be a whole number >= 1"),
        (np.ones((3, 2)), 1.5, "k must be a whole number >= 1"),
    ],
)
def test_bad_input_is_refused_at_the_boundary(vectors, k, message):
    with pytest.raises(ValueError, match=message):
        nearest_neighbours(vectors, k)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_faiss_search_of_a_large_catalog_gives_the_exact_answer(dtype):
    rng = np.random.default_rng(3)
    vectors = rng.standard_normal((FAISS_FROM + 100, 24)).astype(dtype)
    vectors[10] = vectors[11] = vectors[12]  # exact copies: tied at similarity 1
    vectors[20] = 0.0  # a zero vector: cosine 0 with everything
    vectors[30:40] = vectors[29]  # ten copies: tied past the k-th place
    fast = nearest_neighbours(vectors, 5)
    exact = statistics._exact_neighbours(
        vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-30),
        range(len(vectors)),
        5,
        1 << 24,
    )
    np.testing.assert_array_equal(fast[1], exact[1])
    np.testing.assert_allclose(fast[0], exact[0], atol=1e-6)
    assert fast[0].dtype == dtype
    assert list(fast[1][29]) == [30, 31, 32, 33, 34]  # ties by index, lowest first
    assert 12 not in fast[1][12] and {10, 11} <= set(fast[1][12])
