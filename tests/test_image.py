"""load_image: every accepted input, and a clear error for every rejected one."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.image import load_image, to_tensor


def test_uint8_rgb_array_is_scaled_to_unit_range():
    array = np.array([[[0, 128, 255]]], dtype=np.uint8)
    out = load_image(array)
    assert out.dtype == np.float32 and out.shape == (1, 1, 3)
    np.testing.assert_allclose(out[0, 0], [0.0, 128 / 255, 1.0])


def test_uint16_array_uses_full_16_bit_range():
    out = load_image(np.full((2, 3), 65535, dtype=np.uint16))
    assert out.shape == (2, 3, 3)
    np.testing.assert_allclose(out, 1.0)


@pytest.mark.parametrize("shape", [(5, 7), (5, 7, 1)])
def test_grayscale_is_replicated_to_three_channels(shape):
    gray = np.linspace(0, 1, 35, dtype=np.float32).reshape(shape)
    out = load_image(gray)
    assert out.shape == (5, 7, 3)
    np.testing.assert_array_equal(out[:, :, 0], out[:, :, 2])


def test_rgba_is_composited_onto_background():
    rgba = np.zeros((1, 2, 4), dtype=np.uint8)
    rgba[0, 0] = [255, 0, 0, 255]  # opaque red stays red
    rgba[0, 1] = [255, 0, 0, 0]  # transparent shows the background
    out = load_image(rgba, background=(0.0, 0.0, 1.0))
    np.testing.assert_allclose(out[0, 0], [1, 0, 0])
    np.testing.assert_allclose(out[0, 1], [0, 0, 1])


def test_bool_mask_loads_as_black_and_white():
    out = load_image(np.array([[True, False]]))
    np.testing.assert_array_equal(out[0, :, 0], [1.0, 0.0])


@pytest.mark.parametrize("shape", [(3, 4, 5), (1, 3, 4, 5)])
def test_channels_first_tensor(shape):
    tensor = torch.rand(shape)
    out = load_image(tensor)
    assert out.shape == (4, 5, 3)
    np.testing.assert_allclose(out[..., 1], tensor.reshape(3, 4, 5)[1].numpy())


def test_to_tensor_round_trips_layout():
    image = load_image(np.random.default_rng(0).random((4, 6, 3)))
    assert to_tensor(image).shape == (3, 4, 6)
    np.testing.assert_array_equal(to_tensor(image).permute(1, 2, 0).numpy(), image)


@pytest.mark.parametrize("mode", ["1", "L", "P", "RGB", "RGBA", "LA", "CMYK", "I;16", "I", "F"])
def test_pil_modes(mode):
    base = Image.new("RGB", (6, 4), (200, 100, 50))
    if mode == "I;16":
        pil = Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16))
    elif mode == "I":
        pil = Image.fromarray(np.full((4, 6), 1000, dtype=np.int32))
    elif mode == "F":
        pil = Image.fromarray(np.full((4, 6), 0.25, dtype=np.float32))
    else:
        pil = base.convert(mode)
    out = load_image(pil)
    assert out.shape == (4, 6, 3)
    assert 0.0 <= out.min() <= out.max() <= 1.0


def test_path_png_and_jpeg(tmp_path):
    rgb = (np.random.default_rng(1).random((20, 30, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "a.png")
    np.testing.assert_allclose(load_image(tmp_path / "a.png"), rgb / 255, atol=1e-6)
    Image.fromarray(rgb).save(tmp_path / "a.jpg", quality=95)
    assert load_image(str(tmp_path / "a.jpg")).shape == (20, 30, 3)


def test_sixteen_bit_png_keeps_precision(tmp_path):
    values = np.array([[0, 1, 65535]], dtype=np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    out = load_image(tmp_path / "deep.png")
    np.testing.assert_allclose(out[0, :, 0], [0, 1 / 65535, 1], rtol=1e-5)


def test_max_side_downscales_keeping_aspect(tmp_path):
    rgb = np.zeros((300, 600, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(tmp_path / "wide.jpg")
    assert load_image(tmp_path / "wide.jpg", max_side=100).shape == (50, 100, 3)
    assert load_image(rgb, max_side=100).shape == (50, 100, 3)
    assert load_image(rgb, max_side=1000).shape == (300, 600, 3)


def test_large_jpeg_decodes_at_reduced_size(tmp_path):
    # 12000x9000 would need 1.3 GB as float32; with max_side the decoder shrinks it first.
    Image.new("RGB", (12000, 9000), (10, 20, 30)).save(tmp_path / "huge.jpg", quality=50)
    out = load_image(tmp_path / "huge.jpg", max_side=1200)
    assert out.shape == (900, 1200, 3)
    np.testing.assert_allclose(out[450, 600], [10 / 255, 20 / 255, 30 / 255], atol=0.02)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="not found"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(FileNotFoundError, match="directory"):
        load_image(tmp_path)


def test_empty_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ValueError, match="empty"):
        load_image(tmp_path / "empty.png")


def test_corrupt_file(tmp_path):
    (tmp_path / "junk.png").write_bytes(b"this is not an image at all")
    with pytest.raises(ValueError, match="not a readable image"):
        load_image(tmp_path / "junk.png")


def test_truncated_file(tmp_path):
    rgb = (np.random.default_rng(2).random((64, 64, 3)) * 255).astype(np.uint8)
    Image.fromarray(rgb).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        load_image(tmp_path / "cut.png")


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((0, 5, 3), dtype=np.uint8), "empty"),
        (np.zeros((4, 4, 2), dtype=np.uint8), "shape"),
        (np.zeros((2, 4, 4, 3), dtype=np.uint8), "shape"),
        (np.full((2, 2, 3), 2.0), r"\[0, 1\]"),
        (np.full((2, 2, 3), np.nan), "NaN"),
        (np.zeros((2, 2, 3), dtype=np.int8), "dtype"),
        (np.zeros((2, 2, 3), dtype=np.complex64), "dtype"),
    ],
)
def test_bad_arrays_name_the_problem(array, message):
    with pytest.raises(ValueError, match=message):
        load_image(array)


def test_batch_tensor_and_unknown_type_are_rejected():
    with pytest.raises(ValueError, match="batch"):
        load_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="channels-first"):
        load_image(torch.zeros(5, 4, 4))
    with pytest.raises(TypeError, match="accepted"):
        load_image([[0, 1], [1, 0]])


def test_bad_max_side():
    with pytest.raises(ValueError, match="max_side"):
        load_image(np.zeros((2, 2)), max_side=0)


def test_unsupported_pil_mode():
    with pytest.raises(ValueError, match="unsupported PIL image mode"):
        load_image(_fake_mode_image())


def _fake_mode_image() -> Image.Image:
    image = Image.new("L", (2, 2))
    image._mode = "BGR;24"  # a mode Pillow knows but we do not accept
    return image


def test_image_size_reads_headers_and_shapes(tmp_path):
    from clusterlens.image import image_size

    Image.new("RGB", (30, 20)).save(tmp_path / "a.png")
    assert image_size(tmp_path / "a.png") == (20, 30)
    assert image_size(np.zeros((5, 6, 3))) == (5, 6)
    assert image_size(torch.zeros(3, 7, 8)) == (7, 8)
    with pytest.raises(FileNotFoundError):
        image_size(tmp_path / "missing.png")
    (tmp_path / "junk.png").write_bytes(b"not an image")
    with pytest.raises(ValueError, match="not a readable image"):
        image_size(tmp_path / "junk.png")
    with pytest.raises(TypeError, match="accepted"):
        image_size([[0, 1]])


def test_large_png_is_reduced_while_decoding_to_the_size_the_array_path_gives(tmp_path):
    rng = np.random.default_rng(0)
    blocks = rng.integers(0, 256, (35, 50, 3), dtype=np.uint8)
    pixels = np.kron(blocks, np.ones((20, 20, 1), np.uint8))  # 700x1000, 20-px blocks
    path = tmp_path / "big.png"
    Image.fromarray(pixels).save(path)
    from_file = load_image(path, max_side=300)  # reduced 3x by Pillow first
    from_array = load_image(pixels, max_side=300)  # float, area-resized once
    assert from_file.shape == from_array.shape == (210, 300, 3)
    difference = np.abs(from_file - from_array)
    # inside the blocks the two agree; they resample block edges a little differently
    assert np.median(difference) < 1e-3 and difference.mean() < 0.05
