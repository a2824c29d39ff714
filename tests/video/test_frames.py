"""Video input: files, folders and lists, decoded lazily, with clear errors."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from clusterlens.video import is_video_input, open_video


def test_list_of_frames_with_stride_and_max_side(clip):
    frames = open_video(clip, frame_stride=3, max_side=48)
    assert len(frames) == 3  # frames 0, 3, 6 of 8
    assert frames.size == (36, 48) and frames.original_size == (72, 96)
    decoded = dict(frames)
    assert sorted(decoded) == [0, 1, 2]
    expected = cv2.resize(clip[3], (48, 36), interpolation=cv2.INTER_AREA)
    np.testing.assert_allclose(decoded[1], expected, atol=0.02)


def test_video_file_reads_chosen_frames_in_order(tmp_path, clip, video_writer):
    path = tmp_path / "clip.avi"
    video_writer(path, clip)
    frames = open_video(path, frame_stride=2)
    assert (len(frames), frames.kind, frames.size) == (4, "file", (72, 96))
    read = list(frames.read([3, 1]))
    assert [index for index, _ in read] == [1, 3]
    # MJPG is lossy: the frame read is close to the one written, and not to another
    assert np.abs(read[1][1] - clip[6]).mean() < 0.03
    assert np.abs(read[1][1] - clip[0]).mean() > np.abs(read[1][1] - clip[6]).mean()
    assert open_video(path, max_frames=2).__len__() == 2


def test_folder_in_name_order(tmp_path, clip):
    for index, frame in enumerate(clip[:3]):
        cv2.imwrite(str(tmp_path / f"f{index:03d}.png"), (frame[..., ::-1] * 255).astype(np.uint8))
    (tmp_path / "notes.txt").write_text("not a frame")
    frames = open_video(tmp_path)
    assert len(frames) == 3 and frames.kind == "folder"
    np.testing.assert_allclose(frames.frame(2), clip[2], atol=1 / 255 + 1e-6)
    assert is_video_input(tmp_path) and is_video_input(tmp_path / "x.MP4")
    assert not is_video_input(tmp_path / "f000.png")


def test_only_an_animated_gif_is_a_clip(tmp_path):
    still, moving = tmp_path / "still.gif", tmp_path / "moving.gif"
    frames = [Image.new("RGB", (8, 6), colour) for colour in ("red", "blue", "green")]
    frames[0].save(still)
    frames[0].save(moving, save_all=True, append_images=frames[1:], duration=100)
    assert not is_video_input(still)
    assert is_video_input(moving)
    assert len(open_video(moving)) == 3


def test_frames_are_decoded_only_when_read(tmp_path, clip):
    for index, frame in enumerate(clip):
        cv2.imwrite(str(tmp_path / f"f{index:03d}.png"), (frame * 255).astype(np.uint8))
    frames = open_video(tmp_path)
    (tmp_path / "f005.png").write_bytes(b"broken")  # only a read of frame 5 can notice
    assert len(list(frames.read([0, 7]))) == 2
    with pytest.raises(ValueError):
        frames.frame(5)


@pytest.mark.parametrize(
    ("make", "error", "words"),
    [
        (lambda d: d / "missing.mp4", FileNotFoundError, "not found"),
        (lambda d: d, ValueError, "it is empty"),
        (lambda d: _write(d / "bad.mp4", b"this is no video"), ValueError, "cannot open"),
        (lambda d: _write(d / "empty.avi", b""), ValueError, "video"),
    ],
)
def test_clear_errors(tmp_path, make, error, words):
    with pytest.raises(error, match=words) as raised:
        open_video(make(tmp_path))
    assert "expected" in str(raised.value)  # says what is accepted


def test_bad_options_and_inputs(clip):
    with pytest.raises(ValueError, match="frame_stride must be a positive integer"):
        open_video(clip, frame_stride=0)
    with pytest.raises(ValueError, match="max_side"):
        open_video(clip, max_side=-1)
    with pytest.raises(ValueError, match="list of frames is empty"):
        open_video([])
    with pytest.raises(TypeError, match="cannot read a video from int"):
        open_video(3)
    with pytest.raises(IndexError):
        open_video(clip).frame(8)


def test_a_single_image_is_not_a_clip(tmp_path):
    path = tmp_path / "one.png"
    cv2.imwrite(str(path), np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="single image"):
        open_video(path)


def _write(path, data: bytes):
    path.write_bytes(data)
    return path


def test_moving_clip_helper_moves(make_clip):
    first, second = make_clip(frames=2)[:2]
    np.testing.assert_allclose(first[:, 3:], second[:, :-3])


def test_a_file_shorter_than_its_header_says_is_a_clear_error(tmp_path, clip, video_writer):
    from clusterlens.video import VideoFrames

    path = tmp_path / "short.avi"
    video_writer(path, clip[:5])
    honest = open_video(path)
    # a container whose header promises 8 frames but holds 5
    lying = VideoFrames("file", path, 8, honest.size, honest.original_size, 1, None, "short")
    assert [index for index, _ in lying.read([0, 4])] == [0, 4]
    with pytest.raises(ValueError, match="ended after 5 frames, before frame 7"):
        list(lying.read([7]))
    with pytest.raises(ValueError, match="ended after 5 frames"):
        lying.frame(6)


def test_frames_of_different_sizes_are_a_clear_error(clip):
    frames = open_video([clip[0], clip[1][:40, :50]])
    assert frames.frame(0).shape[:2] == (72, 96)
    with pytest.raises(ValueError, match="frame 1 of .* is 50x40 but the first is 96x72"):
        frames.frame(1)


def test_a_clip_context_keeps_only_as_many_frames_as_fit_in_its_memory_bound():
    from clusterlens.video.context import MAX_CACHED_BYTES, MAX_CACHED_FRAMES, frames_that_fit

    assert frames_that_fit((360, 480)) == MAX_CACHED_FRAMES
    big = frames_that_fit((768, 1024))
    assert big * 2 * 768 * 1024 * 12 <= MAX_CACHED_BYTES < (big + 1) * 2 * 768 * 1024 * 12
    assert frames_that_fit((8000, 8000)) == 1
