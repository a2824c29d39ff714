"""DivPrune: the greedy max-min choice, checked against a direct loop; keep-all exactness."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from pruner_helpers import inputs_of, model_logits

from clusterlens.models.vlm.pruners import DivPrune, get_pruner
from clusterlens.models.vlm.pruners.divprune import cosine_distances, max_min_diverse

TIGHT = {"rtol": 1e-5, "atol": 1e-5}


def loop_max_min(features: np.ndarray, budget: int) -> list[int]:
    """The paper's greedy written as plain loops over a numpy distance matrix."""
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    dist = 1.0 - unit @ unit.T
    count = len(features)
    nearest = [min(dist[i, j] for j in range(count) if j != i) for i in range(count)]
    chosen = [int(np.argmax(nearest))]
    while len(chosen) < budget:
        gaps = [-np.inf if i in chosen else min(dist[i, s] for s in chosen) for i in range(count)]
        chosen.append(int(np.argmax(gaps)))
    return chosen


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_greedy_choice_equals_a_direct_loop(seed):
    features = torch.randn(30, 8, generator=torch.Generator().manual_seed(seed))
    got = max_min_diverse(features, 10).tolist()
    assert got == loop_max_min(features.double().numpy(), 10)
    assert len(set(got)) == 10


def test_greedy_beats_random_subsets_on_the_smallest_pairwise_distance():
    features = torch.randn(12, 3, generator=torch.Generator().manual_seed(5))
    dist = cosine_distances(features)

    def spread(subset):
        return min(float(dist[i, j]) for i, j in itertools.combinations(subset, 2))

    greedy = spread(max_min_diverse(features, 4).tolist())
    subsets = [spread(s) for s in itertools.combinations(range(12), 4)]
    # greedy max-min is a 2-approximation of the best spread, and beats the median subset
    assert greedy >= max(subsets) / 2
    assert greedy > float(np.median(subsets))


def test_budget_above_the_tokens_keeps_them_all_and_bad_budgets_are_refused():
    features = torch.randn(5, 4)
    assert sorted(max_min_diverse(features, 99).tolist()) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError, match="budget must be a positive"):
        max_min_diverse(features, 0)
    with pytest.raises(ValueError, match=r"\(N, d\)"):
        cosine_distances(torch.randn(5))


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next"])
def test_keep_all_reproduces_the_model_logits(family):
    inputs = inputs_of(family)
    plan = DivPrune().plan(inputs, inputs.image_tokens)
    assert bool(plan.keep.all())
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features, **plan.prepare_kwargs())
    logits, _ = inputs.adapter.prefill(prompt)
    torch.testing.assert_close(logits, model_logits(inputs), **TIGHT)


def test_plan_keeps_exactly_the_greedy_tokens():
    inputs = inputs_of("qwen2_vl")
    plan = get_pruner("divprune").plan(inputs, 6)
    chosen = max_min_diverse(inputs.features.embeds, 6)
    assert int(plan.keep.sum()) == 6
    assert torch.nonzero(plan.keep).squeeze(1).tolist() == sorted(chosen.tolist())
