"""CLIP / SigLIP / DINOv2 bundles: tiny random models through the real library code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.models import ModelNotFoundError, UnknownModelError, load_model
from clusterlens.models.clip import ClipBundle, load_hf_clip, load_open_clip

TINY_NAMES = ["open_clip:tiny", "hf:tiny-clip", "hf:tiny-siglip", "hf:tiny-dinov2"]


@pytest.fixture(scope="module")
def bundles() -> dict[str, ClipBundle]:
    torch.set_num_threads(1)
    return {name: load_model(name) for name in TINY_NAMES}


def _images() -> list:
    rng = np.random.default_rng(0)
    return [
        rng.integers(0, 255, (40, 30, 3), dtype=np.uint8),  # odd aspect ratio
        Image.new("RGB", (64, 64), (200, 10, 10)),
        rng.integers(0, 255, (20, 20), dtype=np.uint8),  # grayscale
        rng.integers(0, 255, (12, 12, 4), dtype=np.uint8),  # RGBA
    ]


@pytest.mark.parametrize("name", TINY_NAMES)
def test_image_embeddings_are_unit_norm_and_match_preprocessed_batch(bundles, name):
    bundle = bundles[name]
    embeddings = bundle.encode_images(_images())
    assert embeddings.shape[0] == 4 and embeddings.ndim == 2
    assert torch.allclose(embeddings.norm(dim=1), torch.ones(4), atol=1e-5)
    assert not embeddings.requires_grad
    # the same images, preprocessed by the bundle's own transform, give the same vectors
    pixels = torch.stack([bundle.preprocess(Image.fromarray(_images()[0]))])
    assert pixels.shape == (1, 3, bundle.image_size, bundle.image_size)
    assert torch.allclose(bundle.encode_images(pixels)[0], embeddings[0], atol=1e-5)
    # different images give different embeddings (the model looks at the pixels)
    assert not torch.allclose(embeddings[0], embeddings[1], atol=1e-3)


@pytest.mark.parametrize("name", ["open_clip:tiny", "hf:tiny-clip", "hf:tiny-siglip"])
def test_text_embeddings_share_the_image_space(bundles, name):
    bundle = bundles[name]
    texts = bundle.encode_texts(["a photo of a cat", "a red car", "the sky"])
    images = bundle.encode_images(_images()[:1])
    assert texts.shape == (3, images.shape[1])
    assert torch.allclose(texts.norm(dim=1), torch.ones(3), atol=1e-5)
    assert not torch.allclose(texts[0], texts[1], atol=1e-3)
    assert bundle.family == ("open_clip" if name.startswith("open_clip") else "hf")


def test_dinov2_is_image_only(bundles):
    bundle = bundles["hf:tiny-dinov2"]
    assert not bundle.has_text
    with pytest.raises(ValueError, match="image-only"):
        bundle.encode_texts(["a cat"])


def test_bad_inputs_are_explained(bundles):
    bundle = bundles["open_clip:tiny"]
    with pytest.raises(ValueError, match="at least one image"):
        bundle.encode_images([])
    with pytest.raises(ValueError, match="uint8"):
        bundle.encode_images([np.zeros((8, 8, 3), np.float32)])
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        bundle.encode_images(torch.zeros(3, 32, 32))
    with pytest.raises(ValueError, match="list of strings"):
        bundle.encode_texts("a cat")


def test_hf_folder_round_trip(tmp_path, bundles):
    """A model saved with save_pretrained loads back from its folder with the same output."""
    from transformers import CLIPImageProcessor

    tiny = bundles["hf:tiny-dinov2"]
    tiny.model.save_pretrained(tmp_path)
    CLIPImageProcessor(
        size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
    ).save_pretrained(tmp_path)
    loaded = load_hf_clip(str(tmp_path))
    pixels = torch.rand(2, 3, 32, 32)
    assert torch.allclose(loaded.encode_images(pixels), tiny.encode_images(pixels), atol=1e-5)


def test_missing_weights_name_where_we_looked(tmp_path):
    with pytest.raises(ModelNotFoundError, match="HF cache"):
        load_open_clip("ViT-B-16/laion2b_s34b_b88k")
    with pytest.raises(ModelNotFoundError, match="not found at"):
        load_open_clip(f"ViT-B-16/{tmp_path}/missing.bin")
    with pytest.raises(ModelNotFoundError, match="local Hugging Face cache"):
        load_hf_clip(str(tmp_path / "no_such_model"))
    with pytest.raises(UnknownModelError, match="no pretrained tag"):
        load_open_clip("ViT-B-16/not_a_tag")
    with pytest.raises(UnknownModelError, match="architecture"):
        load_open_clip("ViT-Q-99/whatever")
