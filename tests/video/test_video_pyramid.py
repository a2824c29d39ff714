"""The temporal pyramid and clusters carried through a clip."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.video.pyramid import carry_clusters, iter_carried_clusters, temporal_pyramid


def test_levels_pool_time_and_space(make_clip):
    clip = make_clip(frames=5, size=(32, 48))
    pyramid = temporal_pyramid(clip, levels=3, side=48)
    shapes = [level.shape for level in pyramid.levels]
    assert shapes == [(5, 32, 48, 3), (3, 16, 24, 3), (2, 8, 12, 3)]
    # level 1, frame 0 is the mean of frames 0 and 1, pooled 2x2
    expected = ((clip[0] + clip[1]) / 2).reshape(16, 2, 24, 2, 3).mean(axis=(1, 3))
    np.testing.assert_allclose(pyramid.levels[1][0], expected, atol=1e-5)
    np.testing.assert_allclose(
        pyramid.levels[1][2], clip[4].reshape(16, 2, 24, 2, 3).mean(axis=(1, 3)), atol=1e-5
    )


def test_motion_is_zero_for_a_still_clip_and_grows_with_speed(make_clip):
    still = temporal_pyramid([make_clip(frames=1)[0]] * 3)
    assert np.allclose(still.motion(), 0)
    slow = temporal_pyramid(make_clip(frames=3, step=1)).motion()
    fast = temporal_pyramid(make_clip(frames=3, step=6)).motion()
    assert slow[0] == 0 and (fast[1:] > slow[1:]).all()


def test_pyramid_errors(make_clip):
    with pytest.raises(ValueError, match="levels must be a positive integer"):
        temporal_pyramid(make_clip(frames=2), levels=0)
    with pytest.raises(ValueError, match="at least one frame"):
        temporal_pyramid([])
    with pytest.raises(ValueError, match="differ in size"):
        temporal_pyramid([np.zeros((8, 8, 3)), np.zeros((8, 9, 3))])


def test_ids_follow_regions_and_a_cut_starts_a_new_keyframe(make_clip):
    clip = make_clip(frames=6, size=(64, 80), step=2)
    cut = [1.0 - frame[::-1, ::-1] for frame in make_clip(frames=3, size=(64, 80), step=2)]
    maps, keyframes = carry_clusters(clip + cut, keyframe_interval=20, n_segments=40)
    assert len(maps) == 9
    assert keyframes == [0, 6]  # the cut (frame 6) could not be warped: re-clustered
    # without the cut, ids carry: frame 1 reuses frame 0's ids nearly everywhere
    assert np.isin(maps[1], np.unique(maps[0])).mean() > 0.9
    # stretches never share ids
    assert not set(np.unique(maps[6])) & set(np.unique(maps[5]))


def test_keyframe_interval_bounds_a_stretch(make_clip):
    maps, keyframes = carry_clusters(make_clip(frames=5), keyframe_interval=2, n_segments=20)
    assert len(maps) == 5 and keyframes == [0, 2, 4]
    with pytest.raises(ValueError, match="min_warped_share"):
        carry_clusters(make_clip(frames=2), min_warped_share=2)


def test_carried_maps_stream_one_stretch_at_a_time(make_clip):
    clip = make_clip(frames=7)
    pulled = []

    def frames():
        for index, frame in enumerate(clip):
            pulled.append(index)
            yield frame

    stream = iter_carried_clusters(frames(), keyframe_interval=3, n_segments=20)
    first, is_keyframe = next(stream)
    # the first map comes after one stretch is read, not the whole clip
    assert is_keyframe and len(pulled) == 3
    rest = list(stream)
    maps, keyframes = carry_clusters(clip, keyframe_interval=3, n_segments=20)
    streamed = [first] + [ids for ids, _ in rest]
    assert all(np.array_equal(a, b) for a, b in zip(streamed, maps, strict=True))
    assert [0] + [i + 1 for i, (_, key) in enumerate(rest) if key] == keyframes
