"""The pruner registry and the shared answer path."""

from __future__ import annotations

import pytest
import torch
from pruner_helpers import inputs_of

from clusterlens.models.vlm.pruners import PRUNERS, get_pruner, list_pruners


def test_registry_lists_the_four_baselines_and_the_reference():
    assert list_pruners() == ["all", "cdpruner", "divprune", "fastv", "visionzip"]
    assert all(PRUNERS[name].name == name for name in PRUNERS)
    with pytest.raises(ValueError, match="unknown token pruner 'fastvv'; choose from all"):
        get_pruner("fastvv")


@pytest.mark.parametrize("name", ["all", "cdpruner", "divprune", "fastv", "visionzip"])
def test_answer_keeps_the_budget_and_accounts_for_it(name):
    inputs = inputs_of("qwen2_vl")
    answer = get_pruner(name).answer(inputs, 6, max_new_tokens=3)
    kept = inputs.image_tokens if name == "all" else 6
    assert answer.image_tokens_kept == kept
    assert answer.image_tokens_full == inputs.image_tokens
    assert answer.tokens_kept == answer.tokens_full - (inputs.image_tokens - kept)
    assert 1 <= len(answer.token_ids) <= 3
    assert (answer.flops_kept < answer.flops_full) == (name != "all")
    assert answer.select_s >= 0 and answer.prefill_s > 0


def test_budgets_above_the_grid_keep_everything_and_bad_budgets_are_refused():
    inputs = inputs_of("llava")
    plan = get_pruner("divprune").plan(inputs, 10_000)
    assert bool(plan.keep.all())
    with pytest.raises(ValueError, match="budget must be a positive number"):
        get_pruner("cdpruner").plan(inputs, 0)
    assert torch.equal(get_pruner("all").plan(inputs, 1).keep, plan.keep)
