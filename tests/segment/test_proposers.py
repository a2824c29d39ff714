"""Mask proposers: offline regions, and the real SAM / SAM2 predictors on tiny models."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.segment.proposers import OfflineRegionProposer, load_proposer


def test_offline_masks_contain_their_point_and_nest(image):
    proposer = OfflineRegionProposer(fine_segments=60, medium_segments=12, coarse_segments=4)
    points = np.array([[5.0, 5.0], [25.0, 33.0], [50.0, 44.0]])
    proposals = proposer.propose(image, points)
    assert proposals.masks.shape == (3, 3, 48, 64) and proposals.scores is None
    areas = proposals.masks.reshape(3, 3, -1).sum(axis=2)
    for index, (x, y) in enumerate(points.astype(int)):
        assert proposals.masks[index, :, y, x].all()  # every granularity holds the point
        assert areas[index, 0] >= areas[index, 1] >= areas[index, 2]  # coarse >= fine
        fine, coarse = proposals.masks[index, 2], proposals.masks[index, 0]
        assert not (fine & ~coarse).any()  # fine regions nest in coarse ones
    sky = proposals.masks[0, 0]
    assert not sky[20:].any()  # the sky's coarse mask stops at the horizon (colour edge)
    assert proposals.regions.shape == (48, 64)


def test_offline_rejects_points_outside_and_bad_segment_counts(image):
    with pytest.raises(ValueError, match="inside the 64x48 image"):
        OfflineRegionProposer().propose(image, np.array([[64.0, 3.0]]))
    with pytest.raises(ValueError, match="coarse_segments <= medium_segments"):
        OfflineRegionProposer(fine_segments=10, medium_segments=20)
    with pytest.raises(ValueError, match="unknown proposer"):
        load_proposer("maskrcnn")


@pytest.mark.slow
def test_sam_proposer_runs_the_real_predictor_on_a_tiny_model(image):
    pytest.importorskip("segment_anything")
    from tests.regions.test_sam import tiny_sam

    from clusterlens.segment.proposers import SamProposer

    proposals = SamProposer(tiny_sam(), batch_size=2).propose(
        image, np.array([[5.0, 5.0], [25.0, 33.0], [50.0, 44.0]])
    )
    assert proposals.masks.shape == (3, 3, 48, 64) and proposals.scores.shape == (3, 3)
    areas = proposals.masks.reshape(3, 3, -1).sum(axis=2)
    assert (np.diff(areas, axis=1) <= 0).all()  # sorted coarse -> fine


def test_missing_sam_checkpoint_is_a_clear_error(tmp_path):
    pytest.importorskip("segment_anything")
    with pytest.raises(FileNotFoundError, match="not found"):
        load_proposer(f"sam:{tmp_path / 'sam_vit_b.pth'}")


@pytest.mark.slow
def test_sam2_proposer_runs_the_real_predictor_on_a_tiny_model(image):
    pytest.importorskip("sam2")
    from tests.regions.test_sam import tiny_sam2

    from clusterlens.segment.proposers import Sam2Proposer

    proposals = Sam2Proposer(tiny_sam2()).propose(image, np.array([[5.0, 5.0], [25.0, 33.0]]))
    assert proposals.masks.shape == (2, 3, 48, 64) and proposals.scores.shape == (2, 3)
    areas = proposals.masks.reshape(2, 3, -1).sum(axis=2)
    assert (np.diff(areas, axis=1) <= 0).all()
