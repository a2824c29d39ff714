"""Ways of knowing and the fixed balancer."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.relevance import WAYS, FixedBalancer, ways_of_knowing


def test_ways_are_three_unit_maps_in_order():
    image = np.full((64, 64, 3), 0.5, np.float32)
    image[20:40, 20:40] = [1.0, 0.0, 0.0]
    coupling = np.zeros((64, 64), np.float32)
    coupling[:8] = 1.0
    ways = ways_of_knowing(image, coupling)
    assert ways.shape == (3, 64, 64) and WAYS == ("information", "salience", "coupling")
    assert ways.min() >= 0 and ways.max() <= 1
    np.testing.assert_array_equal(ways[2], coupling)
    # the square's edges carry information and salience; the flat field none
    assert ways[0][20, 20:40].mean() > 0.1 and ways[0][55:, 55:].max() == 0
    assert ways[1][19:21, 25:35].mean() > ways[1][50:60, 50:60].mean() + 0.2


def test_no_coupling_means_zeros_and_shapes_must_match():
    ways = ways_of_knowing(np.zeros((8, 8)))
    np.testing.assert_array_equal(ways[2], 0)
    with pytest.raises(ValueError, match="does not match"):
        ways_of_knowing(np.zeros((8, 8)), np.zeros((4, 4)))


def test_balancer_normalises_and_reports():
    balancer = FixedBalancer({"coupling": 3.0, "salience": 1.0})
    assert balancer.report() == {"information": 0.0, "salience": 0.25, "coupling": 0.75}
    scores = balancer(torch.tensor([[1.0, 1.0, 1.0], [0.0, 0.0, 1.0]]))
    torch.testing.assert_close(scores, torch.tensor([1.0, 0.75]))


@pytest.mark.parametrize(
    "weights", [{"coupling": -1.0, "salience": 2.0}, {"coupling": 0.0}, {"beauty": 1.0}]
)
def test_bad_balancer_weights(weights):
    with pytest.raises(ValueError):
        FixedBalancer(weights)
