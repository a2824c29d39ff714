"""lazy-cascade: coarse estimate -> candidates -> full-setting coupling of those only."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.allocate import allocate


class FakeSource:
    """Exact coupling ``truth``; a coarse estimate with noise; records what was asked."""

    def __init__(self, truth: np.ndarray, noise: float = 0.0, dense_after_fine: bool = False):
        rng = np.random.default_rng(0)
        self.truth = truth
        self.estimate = truth + noise * rng.standard_normal(truth.shape).astype(np.float32)
        self.dense_after_fine = dense_after_fine
        self.asked: list[tuple[int, int]] = []
        self.ran_dense = False

    def coarse(self, expected: int) -> np.ndarray:
        self.expected = expected
        return self.estimate

    def fine(self, rows, cols):
        self.asked += list(zip(rows.tolist(), cols.tolist(), strict=True))
        self.ran_dense = self.dense_after_fine
        return self.truth[rows, cols]

    def exact(self):
        return self.truth if self.ran_dense else None


def maps_and_truth(seed: int = 0, size: int = 64, cells: int = 16):
    rng = np.random.default_rng(seed)
    truth = rng.random((cells, cells)).astype(np.float32) ** 4
    coupling = np.kron(truth, np.ones((size // cells, size // cells), np.float32))
    known = rng.random((2, size, size)).astype(np.float32) * 0.01
    return np.concatenate([known, coupling[None]]), truth


def kept(allocation) -> set[tuple[int, int]]:
    return set(zip(allocation.rows.tolist(), allocation.cols.tolist(), strict=True))


def run(maps, strategy, budget, source=None, **options):
    return allocate(
        maps,
        strategy,
        budget,
        grid=16,
        channel_names=("information", "salience", "coupling"),
        known_channels=("information", "salience"),
        coupling=source,
        **options,
    )


@pytest.mark.parametrize("seed", range(3))
def test_an_accurate_coarse_pass_gives_the_exhaustive_top_k_from_few_cells(seed):
    maps, truth = maps_and_truth(seed)
    reference = run(maps, "topk", 20)
    source = FakeSource(truth)
    zeroed = maps * np.array([1, 1, 0], np.float32)[:, None, None]  # coupling only from source
    lazy = run(zeroed, "lazy-cascade", 20, source, halo=0)
    assert kept(lazy) == kept(reference)
    assert len(set(source.asked)) < 0.5 * truth.size  # only candidates were evaluated
    np.testing.assert_allclose(np.sort(lazy.scores), np.sort(reference.scores), atol=1e-6)


def test_fine_values_not_the_coarse_ones_decide_the_kept_cells():
    maps, truth = maps_and_truth(1)
    source = FakeSource(truth, noise=0.02)
    lazy = run(maps, "lazy-cascade", 10, source, oversample=4)
    best_asked = sorted(source.asked, key=lambda cell: -truth[cell])[:10]
    assert kept(lazy) == set(best_asked)


def test_when_the_source_ran_densely_every_cell_is_considered():
    maps, truth = maps_and_truth(2)
    source = FakeSource(truth, noise=0.5, dense_after_fine=True)  # a useless coarse pass
    lazy = run(maps, "lazy-cascade", 15, source, oversample=1, halo=0)
    assert kept(lazy) == kept(run(maps, "topk", 15))


def test_without_a_source_the_maps_coupling_is_read_and_that_is_noted():
    maps, _ = maps_and_truth(3)
    lazy = run(maps, "lazy-cascade", 12)
    assert kept(lazy) == kept(run(maps, "topk", 12))
    assert "computed densely" in lazy.meta["lazy_note"]


def test_options_are_checked():
    maps, truth = maps_and_truth(4)
    with pytest.raises(ValueError, match="oversample >= 1"):
        run(maps, "lazy-cascade", 5, FakeSource(truth), oversample=0.5)
    with pytest.raises(ValueError, match="no option 'tolerance'"):
        run(maps, "lazy-cascade", 5, FakeSource(truth), tolerance=0.1)
    with pytest.raises(ValueError, match="one query channel"):
        allocate(maps, "lazy-cascade", 5, grid=16, coupling=FakeSource(truth))
