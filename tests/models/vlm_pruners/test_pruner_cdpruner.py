"""CDPruner: the fast greedy DPP MAP equals a brute-force greedy; how far greedy is from best."""

from __future__ import annotations

import itertools

import pytest
import torch
from pruner_helpers import inputs_of, model_logits

from clusterlens.models.vlm.pruners import CDPruner
from clusterlens.models.vlm.pruners.cdpruner import (
    conditional_kernel,
    greedy_dpp_map,
    instruction_relevance,
)

TIGHT = {"rtol": 1e-5, "atol": 1e-5}


def random_kernel(count: int, dim: int, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    features = torch.randn(count, dim, generator=generator)
    relevance = torch.rand(count, generator=generator) + 0.1
    return conditional_kernel(features, relevance)


def log_det(kernel: torch.Tensor, subset: list[int]) -> float:
    sign, value = torch.linalg.slogdet(kernel.double()[subset][:, subset])
    return float(value) if sign > 0 else -float("inf")


def brute_force_greedy(kernel: torch.Tensor, budget: int) -> list[int]:
    """Greedy MAP by definition: each step, the token whose addition maximises log det."""
    chosen: list[int] = []
    for _ in range(budget):
        gains = {i: log_det(kernel, [*chosen, i]) for i in range(len(kernel)) if i not in chosen}
        chosen.append(max(gains, key=lambda i: (gains[i], -i)))
    return chosen


@pytest.mark.parametrize("seed", range(6))
def test_fast_greedy_equals_brute_force_greedy(seed):
    kernel = random_kernel(9, 6, seed)
    assert greedy_dpp_map(kernel, 5).tolist() == brute_force_greedy(kernel, 5)


@pytest.mark.parametrize("seed", range(6))
def test_greedy_log_det_is_within_the_documented_nat_of_the_exhaustive_best(seed):
    kernel = random_kernel(9, 6, seed)
    greedy = log_det(kernel, greedy_dpp_map(kernel, 4).tolist())
    best = max(log_det(kernel, list(s)) for s in itertools.combinations(range(9), 4))
    assert best - 1.0 <= greedy <= best + 1e-9


def test_rank_used_up_fills_by_relevance():
    features = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 0.01]])
    relevance = torch.tensor([1.0, 2.0, 3.0, 0.5, 4.0])
    chosen = greedy_dpp_map(conditional_kernel(features, relevance), 4).tolist()
    assert len(set(chosen)) == 4
    assert chosen[:2] == [4, 1]  # the most relevant of each direction
    assert chosen[2:] == [2, 0]  # then, with the rank used up, by relevance


def test_relevance_weights_follow_the_question():
    image = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.7, 0.7]])
    text = torch.tensor([[1.0, 0.0]])
    weights = instruction_relevance(image, text, theta=1.0)
    assert torch.allclose(weights, torch.exp(torch.tensor([1.0, 0.0, 0.7071 / 1.0])), atol=1e-3)
    assert torch.equal(instruction_relevance(image, text, theta=0.0), torch.ones(3))
    assert torch.equal(instruction_relevance(image, torch.zeros(0, 2)), torch.ones(3))


def test_the_question_changes_the_kept_set():
    first = CDPruner(theta=3.0).plan(inputs_of("llava", question="red square"), 6).keep
    second = CDPruner(theta=3.0).plan(inputs_of("llava", question="blue circle"), 6).keep
    assert int(first.sum()) == int(second.sum()) == 6
    assert not torch.equal(first, second)


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next"])
def test_keep_all_reproduces_the_model_logits(family):
    inputs = inputs_of(family)
    plan = CDPruner().plan(inputs, inputs.image_tokens)
    assert bool(plan.keep.all())
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features, **plan.prepare_kwargs())
    logits, _ = inputs.adapter.prefill(prompt)
    torch.testing.assert_close(logits, model_logits(inputs), **TIGHT)


def test_bad_inputs_are_refused():
    with pytest.raises(ValueError, match="square"):
        greedy_dpp_map(torch.ones(2, 3), 1)
    with pytest.raises(ValueError, match="relevance"):
        conditional_kernel(torch.ones(3, 2), torch.ones(2))
    with pytest.raises(ValueError, match="theta"):
        CDPruner(theta=-1.0)
