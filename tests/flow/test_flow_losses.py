"""Loss values on tiny hand-made batches, and the valid-pair mask."""

from __future__ import annotations

import pytest
import torch

from clusterlens.flow.losses import LocalityFlowMatching, interpolate
from clusterlens.flow.pairing import Pairing


def identity_velocity(x, t):
    return x


def zero_velocity(x, t):
    return torch.zeros_like(x)


X0 = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
X1 = torch.tensor([[2.0, 0.0], [3.0, 4.0], [10.0, 10.0]])
T = torch.tensor([0.5, 0.5, 0.25])


def test_interpolate_is_the_straight_path():
    assert torch.equal(interpolate(X0, X1, T)[0], torch.tensor([1.0, 0.0]))
    assert torch.equal(interpolate(X0, X1, torch.zeros(3)), X0)
    assert torch.equal(interpolate(X0, X1, torch.ones(3)), X1)


def test_plain_flow_matching_loss_by_hand():
    result = LocalityFlowMatching("none")(zero_velocity, X0, X1, T)
    # Per-sample mean over dims of (x1 - x0)^2: (4+0)/2, (4+16)/2, (100+64)/2.
    assert result.loss.item() == pytest.approx((2 + 10 + 82) / 3)
    assert result.metrics["locality_mode"] == "none"


def test_random_mode_by_hand():
    eps = torch.tensor([[1.0, 0.0], [0.0, -1.0], [2.0, 2.0]])
    loss_fn = LocalityFlowMatching("random", weight=2.0, noise_scale=0.5)
    result = loss_fn(identity_velocity, X0, X1, T, perturbation=eps)
    # v = x: v(u_t) - v(s_t) = (1 - t) (x0 - x0') = -(1 - t) * 0.5 * eps.
    shifts = ((1 - T)[:, None] * 0.5 * eps).pow(2).mean(dim=1)
    expected_locality = shifts.mean().item()
    # Targets differ by x0' - x0 = 0.5 eps.
    expected_target_diff = (0.5 * eps).pow(2).mean(dim=1).mean().item()
    flow = ((interpolate(X0, X1, T) - (X1 - X0)) ** 2).mean(dim=1).mean().item()
    assert result.metrics["loss_locality"] == pytest.approx(expected_locality)
    assert result.metrics["locality_target_diff"] == pytest.approx(expected_target_diff)
    assert result.loss.item() == pytest.approx(flow + 2.0 * expected_locality)
    assert result.metrics["locality_mode"] == "random_perturbation"
    assert result.metrics["locality_valid_ratio"] == 1.0


def cluster_pairing() -> Pairing:
    # Samples 0 and 1 are mates; sample 2 is alone (invalid, self-paired).
    return Pairing(
        mate=torch.tensor([1, 0, 2]),
        valid=torch.tensor([True, True, False]),
        clusters=torch.tensor([4, 4, 9]),
    )


def test_cluster_mode_by_hand():
    result = LocalityFlowMatching("cluster", weight=1.0)(
        identity_velocity, X0, X1, T, pairing=cluster_pairing()
    )
    # Same noise, mate's target: v(u_t) - v(s_t) = t (x1 - x1[mate]).
    # Samples 0, 1: 0.5 * ([2,0] - [3,4]) = [-0.5, -2] -> mean of squares 2.125 each.
    assert result.metrics["loss_locality"] == pytest.approx(2.125)
    # Target difference = x1 - x1[mate]: [-1, -4] -> 8.5.
    assert result.metrics["locality_target_diff"] == pytest.approx(8.5)
    assert result.metrics["locality_valid_pairs"] == 2
    assert result.metrics["locality_valid_ratio"] == pytest.approx(2 / 3)
    assert result.metrics["locality_n_unique_clusters"] == 2
    assert result.metrics["locality_mode"] == "cluster_neighborhood"


def test_invalid_pairs_do_not_enter_the_loss():
    loss_fn = LocalityFlowMatching("cluster", weight=1.0)
    before = loss_fn(identity_velocity, X0, X1, T, pairing=cluster_pairing())
    moved = X1.clone()
    moved[2] = torch.tensor([-50.0, 80.0])  # the loner: changes flow loss, not locality
    after = loss_fn(identity_velocity, X0, moved, T, pairing=cluster_pairing())
    assert after.metrics["loss_locality"] == before.metrics["loss_locality"]
    assert after.metrics["loss_flow"] != before.metrics["loss_flow"]

    # The locality term sends no gradient through the loner (its x1 enters only the flow).
    x1 = X1.clone().requires_grad_(True)
    result = loss_fn(identity_velocity, X0, x1, T, pairing=cluster_pairing())
    flow_only = LocalityFlowMatching("none")(identity_velocity, X0, x1, T)
    (grad_total,) = torch.autograd.grad(result.loss, x1)
    (grad_flow,) = torch.autograd.grad(flow_only.loss, x1)
    assert torch.allclose(grad_total[2], grad_flow[2])
    assert not torch.allclose(grad_total[0], grad_flow[0])


def test_no_valid_pair_gives_zero_locality():
    pairing = Pairing(torch.arange(3), torch.zeros(3, dtype=torch.bool), torch.arange(3))
    result = LocalityFlowMatching("cluster")(identity_velocity, X0, X1, T, pairing=pairing)
    assert result.metrics["loss_locality"] == 0.0
    assert result.metrics["locality_valid_ratio"] == 0.0


def test_bad_settings_and_missing_inputs():
    with pytest.raises(ValueError, match="none, random, cluster"):
        LocalityFlowMatching("gaussian")
    with pytest.raises(ValueError, match="weight must be >= 0"):
        LocalityFlowMatching("random", weight=-1.0)
    with pytest.raises(ValueError, match="noise_scale > 0"):
        LocalityFlowMatching("random", noise_scale=0.0)
    with pytest.raises(ValueError, match="pairing"):
        LocalityFlowMatching("cluster")(identity_velocity, X0, X1, T)
    with pytest.raises(ValueError, match="perturbation"):
        LocalityFlowMatching("random")(identity_velocity, X0, X1, T)
