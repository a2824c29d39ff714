"""SCLIP-style dense CLIP on tiny random open_clip and transformers CLIP models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.segment import MHQRConfig, MHQRSegmenter, OfflineRegionProposer
from clusterlens.segment.clip_dense import ClipDensePredictor, _correlative_attention, _starts
from clusterlens.segment.dense import load_dense_predictor


@pytest.mark.slow  # imports open_clip + transformers CLIP
@pytest.mark.parametrize("name", ["open_clip:tiny", "hf:tiny-clip"])
def test_dense_clip_gives_probabilities_features_and_text_embeddings(name):
    pytest.importorskip("open_clip" if name.startswith("open_clip") else "transformers")
    predictor = load_dense_predictor(name, background=True)
    image = np.random.default_rng(0).random((50, 70, 3)).astype(np.float32)
    out = predictor.predict(image, ["cat", "dog", "car"])
    assert out.class_names == ("cat", "dog", "car", "background")
    assert out.probabilities.shape == (4, 50, 70)
    assert np.allclose(out.probabilities.sum(axis=0), 1.0, atol=1e-4)
    assert out.features.shape[0] == 32 and out.class_embeddings.shape == (4, 32)
    again = predictor.predict(image, ["cat", "dog", "car"])
    assert np.array_equal(out.probabilities, again.probabilities)  # deterministic
    # the text tower ran once for this name list: the second call reused its embeddings
    assert predictor.text_embeddings(list(out.class_names)) is predictor.text_embeddings(
        out.class_names
    )
    assert np.array_equal(out.class_embeddings, again.class_embeddings)


def test_correlative_attention_is_a_sum_of_two_row_stochastic_maps():
    torch.manual_seed(0)
    x = torch.randn(1, 5, 8)
    identity, zero = torch.eye(8), torch.zeros(8)
    out = _correlative_attention(x, identity, zero, identity, zero, identity, zero, heads=2)
    # With q = k = v = x, each output is the q-q attention average, twice.
    head = x.reshape(1, 5, 2, 4).transpose(1, 2)
    weights = torch.softmax(head @ head.transpose(-2, -1) * 4**-0.5, dim=-1)
    expected = (2 * weights @ head).transpose(1, 2).reshape(1, 5, 8)
    assert torch.allclose(out, expected, atol=1e-6)


def test_sliding_windows_cover_the_image():
    assert _starts(100, 32, 16) == [0, 16, 32, 48, 64, 68]
    assert _starts(20, 32, 16) == [0]


@pytest.mark.slow
def test_dense_clip_runs_the_whole_pipeline():
    pytest.importorskip("open_clip")
    predictor = load_dense_predictor("open_clip:tiny")
    segmenter = MHQRSegmenter(
        predictor,
        OfflineRegionProposer(fine_segments=40, medium_segments=10, coarse_segments=4),
        MHQRConfig(),
    )
    image = np.random.default_rng(1).random((40, 48, 3)).astype(np.float32)
    result = segmenter.segment(image, ["road", "sky"])
    assert result.labels.shape == (40, 48) and result.labels.max() <= 1
    assert result.merge is not None


def test_image_only_bundle_is_refused():
    pytest.importorskip("transformers")
    from clusterlens.models.clip import load_hf_clip

    with pytest.raises(ValueError, match="no text tower"):
        ClipDensePredictor(load_hf_clip("tiny-dinov2"))


def test_siglip_patches_go_through_the_pooling_head_one_by_one():
    pytest.importorskip("transformers")
    import torch.nn.functional as F

    from clusterlens.models.clip import load_hf_clip

    predictor = ClipDensePredictor(load_hf_clip("tiny-siglip"))
    vision = predictor.bundle.model.vision_model
    token = torch.randn(1, 1, vision.config.hidden_size)
    pool = vision.head.attention
    with torch.no_grad():
        value = F.linear(token, pool.in_proj_weight.chunk(3)[2], pool.in_proj_bias.chunk(3)[2])
        alone = pool.out_proj(value)
        alone = alone + vision.head.mlp(vision.head.layernorm(alone))
        # the head pooling a single token is exactly what each patch goes through
        assert torch.allclose(vision.head(token), alone[:, 0], atol=1e-5)
    out = predictor.predict(np.random.default_rng(2).random((40, 48, 3)), ["cat", "dog"])
    assert out.probabilities.shape == (2, 40, 48)
    assert np.allclose(out.probabilities.sum(axis=0), 1.0, atol=1e-4)
