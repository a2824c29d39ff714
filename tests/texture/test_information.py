"""Local entropy: the 8-bit count path equals a direct per-window histogram."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.texture.information import local_entropy


def direct_entropy(lum: np.ndarray, bins: int, window: int) -> np.ndarray:
    """Entropy of each window's level histogram, window by window (reflected edges)."""
    levels = np.minimum((lum * bins).astype(np.int64), bins - 1)
    half = window // 2
    padded = np.pad(levels, half, mode="symmetric")
    out = np.zeros(lum.shape)
    for y in range(lum.shape[0]):
        for x in range(lum.shape[1]):
            counts = np.bincount(padded[y : y + window, x : x + window].ravel(), minlength=bins)
            share = counts[counts > 0] / window**2
            out[y, x] = -(share * np.log2(share)).sum() / np.log2(bins)
    return out


@pytest.mark.parametrize("bins,window", [(16, 9), (4, 3), (256, 15), (8, 17)])
def test_entropy_matches_window_histograms(bins, window):
    lum = np.random.default_rng(bins + window).random((23, 31)).astype(np.float32)
    np.testing.assert_allclose(
        local_entropy(lum, bins, window), direct_entropy(lum, bins, window), atol=1e-5
    )


def test_flat_is_zero_and_four_equal_levels_score_one():
    assert local_entropy(np.full((12, 12), 0.3, np.float32)).max() == pytest.approx(0, abs=1e-6)
    checker = np.indices((12, 12)).sum(0) % 2 * 0.5 + (np.arange(12) % 2 * 0.25)[:, None]
    entropy = local_entropy(checker.astype(np.float32) + 0.1, bins=4, window=2)
    assert entropy[1:-1, 1:-1] == pytest.approx(1.0, abs=1e-6)  # each 2x2 holds all 4 levels
