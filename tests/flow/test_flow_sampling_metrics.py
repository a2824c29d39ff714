"""Solvers at any NFE, W2 / MMD against known answers, straightness."""

from __future__ import annotations

import math

import pytest
import torch

from clusterlens.flow.data import load_dataset
from clusterlens.flow.evaluation import evaluate_sweep, parse_nfes
from clusterlens.flow.metrics import mmd, straightness, wasserstein2
from clusterlens.flow.sampling import integrate, steps_for


def test_euler_is_exact_for_constant_velocity_at_any_nfe():
    x0 = torch.zeros(5, 2)
    for nfe in (1, 3, 7):
        trajectory = integrate(lambda x, t: torch.full_like(x, 2.0), x0, nfe=nfe)
        assert torch.allclose(trajectory.samples, torch.full((5, 2), 2.0))
        assert trajectory.points.shape == (nfe + 1, 5, 2)
        assert straightness(trajectory) == pytest.approx(0.0, abs=1e-10)


def time_dependent(x, t):
    return (2 * t)[:, None].expand_as(x)  # x(1) = x(0) + 1 exactly


def test_second_order_solvers_integrate_linear_time_exactly():
    x0 = torch.zeros(3, 2)
    euler = integrate(time_dependent, x0, nfe=2, solver="euler").samples
    assert torch.allclose(euler, torch.full((3, 2), 0.5))  # Euler lags: 0 + 0.5 * 1
    for solver in ("midpoint", "heun"):
        samples = integrate(time_dependent, x0, nfe=2, solver=solver).samples
        assert torch.allclose(samples, torch.ones(3, 2))


def test_rotation_is_curved():
    def rotate(x, t):  # circular paths: velocity turns as the point moves
        return torch.stack([-x[:, 1], x[:, 0]], dim=1)

    x0 = torch.tensor([[1.0, 0.0]])
    trajectory = integrate(rotate, x0, nfe=64, solver="midpoint")
    end = trajectory.samples[0]
    assert end.tolist() == pytest.approx([math.cos(1.0), math.sin(1.0)], abs=1e-3)
    assert straightness(trajectory) > 0.01


def test_nfe_must_fit_the_solver():
    assert steps_for("heun", 8) == 4
    with pytest.raises(ValueError, match="multiple of 2"):
        integrate(time_dependent, torch.zeros(1, 2), nfe=3, solver="midpoint")
    with pytest.raises(ValueError, match="accepted: euler, midpoint, heun"):
        steps_for("rk4", 4)
    with pytest.raises(ValueError, match="multiple of 1"):
        steps_for("euler", 0)


def test_w2_of_a_shift_is_the_shift_length():
    points = torch.randn(200, 2, generator=torch.Generator().manual_seed(0))
    assert wasserstein2(points, points) == pytest.approx(0.0, abs=1e-6)
    assert wasserstein2(points, points + torch.tensor([3.0, 4.0])) == pytest.approx(5.0, rel=1e-6)
    with pytest.raises(ValueError, match="differ in size"):
        wasserstein2(points, torch.zeros(10, 3))


def test_mmd_separates_different_distributions():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.randn(300, 2, generator=generator), torch.randn(300, 2, generator=generator)
    same = mmd(a, b)
    different = mmd(a, b + 2.0)
    assert abs(same) < 0.02
    assert different > 0.2
    with pytest.raises(ValueError, match="at least 2 samples"):
        mmd(a[:1], b)


def test_sweep_skips_impossible_nfes_and_rejects_unknown_solvers():
    dataset = load_dataset("moons", n_train=50, n_test=20)
    options = {"nfes": [1, 2], "n_samples": 20, "with_mmd": False}
    rows = evaluate_sweep(time_dependent, dataset, solvers=["euler", "midpoint"], **options)
    assert [(row["solver"], row["nfe"]) for row in rows] == [
        ("euler", 1),
        ("euler", 2),
        ("midpoint", 2),
    ]
    with pytest.raises(ValueError, match="unknown solver 'eulr'"):
        evaluate_sweep(time_dependent, dataset, solvers=["euler", "eulr"], **options)
    with pytest.raises(ValueError, match="n_samples must be >= 2"):
        evaluate_sweep(time_dependent, dataset, nfes=[1], n_samples=1)
    assert parse_nfes("1, 4,") == [1, 4]
    with pytest.raises(ValueError, match="positive integers"):
        parse_nfes("0,2")
