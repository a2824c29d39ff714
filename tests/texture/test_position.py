"""Position channels and eccentricity."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.texture import generate_texture


def test_position_holds_pixel_centres():
    tex = generate_texture(np.zeros((4, 8)), ["position"])
    np.testing.assert_allclose(tex["pos_x"][0].numpy(), (np.arange(8) + 0.5) / 8)
    np.testing.assert_allclose(tex["pos_y"][:, 0].numpy(), (np.arange(4) + 0.5) / 4)


def test_eccentricity_is_zero_at_fixation_and_one_at_the_farthest_corner():
    tex = generate_texture(np.zeros((101, 201)), ["eccentricity"], fixation=(0.0, 0.0))
    ecc = tex["eccentricity"].numpy()
    assert ecc[0, 0] == pytest.approx(np.hypot(0.5, 0.5) / np.hypot(201, 101), abs=1e-6)
    assert ecc.max() <= 1.0 and ecc[-1, -1] == pytest.approx(ecc.max())
    centred = generate_texture(np.zeros((101, 201)), ["eccentricity"])["eccentricity"].numpy()
    assert centred.argmin() == 50 * 201 + 100
    np.testing.assert_allclose(centred, centred[::-1, ::-1], atol=1e-6)  # symmetric


@pytest.mark.parametrize("fixation", [(1.5, 0.5), (0.5, -0.1), ("a", "b"), (0.5,)])
def test_fixation_outside_the_image_is_rejected(fixation):
    with pytest.raises(ValueError, match="fixation"):
        generate_texture(np.zeros((4, 4)), ["eccentricity"], fixation=fixation)
