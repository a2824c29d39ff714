"""The adaptive balancer: context, training signal, save and load."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.relevance.adaptive import (
    AdaptiveBalancer,
    BalancerExample,
    context_of,
    fit_balancer,
)


def example(useful_way: int, seed: int) -> BalancerExample:
    """Cells whose truth is exactly one of the three ways; the others are noise."""
    generator = torch.Generator().manual_seed(seed)
    features = torch.rand(256, 3, generator=generator)
    truth = (features[:, useful_way] > 0.7).float()
    features[:, useful_way] = truth * 0.9 + 0.05
    maps = features.T.reshape(3, 16, 16).numpy()
    return BalancerExample(features, truth, context_of(maps))


def test_context_is_mean_std_max_per_way():
    maps = np.zeros((3, 2, 2), np.float32)
    maps[2] = [[0.0, 1.0], [1.0, 0.0]]
    np.testing.assert_allclose(context_of(maps).numpy(), [0, 0, 0.5, 0, 0, 0.5, 0, 0, 1.0])


def test_training_learns_to_trust_the_informative_way():
    cases = [example(2, seed) for seed in range(8)]
    model, losses = fit_balancer(cases, epochs=150, seed=0)
    assert losses[-1] < losses[0] * 0.8
    weights = model.for_image(cases[0].features.T.reshape(3, 16, 16).numpy()).report()
    assert weights["coupling"] > 0.6 and abs(sum(weights.values()) - 1) < 1e-3


def test_save_and_load_round_trip(tmp_path):
    model = AdaptiveBalancer(hidden=4)
    path = model.save(tmp_path / "b.pt")
    loaded = AdaptiveBalancer.load(path)
    context = torch.rand(9)
    torch.testing.assert_close(loaded(context), model(context))
    with pytest.raises(FileNotFoundError, match="train_balancer"):
        AdaptiveBalancer.load(tmp_path / "missing.pt")


def test_bad_training_input():
    with pytest.raises(ValueError, match="at least one"):
        fit_balancer([])
