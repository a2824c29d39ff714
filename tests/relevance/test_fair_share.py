"""Fair shares for several objects: each keeps nearly what it would keep alone."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.relevance.fair_share import fair_order, fair_scores


def _share(mass: np.ndarray, kept: np.ndarray, budget: int) -> float:
    """Mass covered by the kept cells over what the object's own K heaviest cover."""
    own = np.sort(mass.ravel())[::-1][:budget].sum()
    return float(mass.ravel()[kept].sum() / own)


def test_a_small_object_is_covered_and_the_large_one_gets_the_rest():
    large = np.zeros((8, 8))
    large[:, :6] = 1.0  # 48 cells
    small = np.zeros((8, 8))
    small[0, 7] = small[1, 7] = 1.0  # 2 cells
    budget = 16
    kept = fair_order([large, small], budget)[:budget]
    assert _share(small, kept, budget) == 1.0
    assert _share(large, kept, budget) == 14 / 16  # every cell the small one leaves


def test_two_large_objects_split_the_budget_evenly():
    left = np.zeros((8, 8))
    left[:, :4] = 1.0
    right = np.zeros((8, 8))
    right[:, 4:] = 1.0
    budget = 20
    kept = fair_order([left, right], budget)[:budget]
    assert abs(_share(left, kept, budget) - _share(right, kept, budget)) <= 1 / budget


def test_a_cell_holding_both_objects_comes_first():
    first = np.full((4, 4), 0.5)
    second = np.full((4, 4), 0.5)
    first[2, 3] = second[2, 3] = 0.9
    assert fair_order([first, second], 4)[0] == 2 * 4 + 3


def test_shares_follow_what_each_object_would_keep_alone_not_its_size():
    # a diffuse object needs many cells to reach its own recall; a compact one, few
    diffuse = np.full((10, 10), 0.2)
    compact = np.zeros((10, 10))
    compact[5, 5], compact[5, 6] = 1.0, 0.8
    budget = 10
    kept = fair_order([diffuse, compact], budget)[:budget]
    assert _share(compact, kept, budget) == 1.0
    assert _share(diffuse, kept, budget) == pytest.approx(1.0)  # any 10 of its cells will do


@pytest.mark.parametrize("seed", range(5))
def test_with_disjoint_objects_the_smallest_share_is_the_best_any_k_cells_reach(seed):
    # objects in separate cells: any choice is k heaviest cells of one and K - k of the
    # other, so the best smallest share is a maximum over k; the greedy rule must reach it
    rng = np.random.default_rng(seed)
    first, second = np.zeros(120), np.zeros(120)
    owner = rng.random(120) < 0.4
    first[owner] = rng.random(owner.sum()) ** 3
    second[~owner] = rng.random((~owner).sum()) ** 3
    budget = 30
    kept = fair_order([first, second], budget)[:budget]
    found = min(_share(first, kept, budget), _share(second, kept, budget), 1.0)
    ranked = [np.sort(mass)[::-1] for mass in (first, second)]
    reach = [np.r_[0.0, np.cumsum(r)] / r[:budget].sum() for r in ranked]  # share with k cells
    best = max(min(reach[0][k], reach[1][budget - k], 1.0) for k in range(budget + 1))
    assert found == pytest.approx(best)


def test_an_object_the_model_does_not_see_takes_no_cells():
    seen = np.arange(16, dtype=float).reshape(4, 4)
    unseen = np.zeros((4, 4))
    order = fair_order([seen, unseen], 5)
    assert list(order[:5]) == list(np.argsort(-seen.ravel(), kind="stable")[:5])


def test_every_cell_is_ranked_once_and_scores_decrease_along_the_order():
    rng = np.random.default_rng(0)
    masses = [rng.random((6, 7)), rng.random((6, 7)), rng.random((6, 7))]
    order = fair_order(masses, 9)
    assert sorted(order.tolist()) == list(range(42))
    beyond = order[18:]  # past twice the budget: by summed mass
    assert np.all(np.diff(sum(masses).ravel()[beyond]) <= 0)
    scores = fair_scores(masses, 9)
    assert scores.shape == (6, 7)
    assert np.all(np.diff(scores.ravel()[order]) < 0)


@pytest.mark.parametrize(
    ("masses", "budget", "message"),
    [
        ([], 3, "at least one"),
        ([np.ones((2, 2)), np.ones((3, 2))], 3, "one shape"),
        ([-np.ones((2, 2))], 3, "non-negative"),
        ([np.ones((2, 2))], -1, "budget"),
        ([np.ones((2, 2))], 2.5, "budget"),
    ],
)
def test_bad_input_is_refused_with_what_is_accepted(masses, budget, message):
    with pytest.raises(ValueError, match=message):
        fair_order(masses, budget)
