"""FastV prefill FLOPs."""

from __future__ import annotations

import pytest

from clusterlens.models.vlm import DecoderShape, prefill_flops


def test_formula_per_layer_summed_over_layers():
    shape = DecoderShape(layers=3, hidden=64, ffn=256)
    n = 100
    per_layer = 4 * n * 64**2 + 2 * n**2 * 64 + 2 * n * 64 * 256
    assert prefill_flops(n, shape) == 3 * per_layer == 18_585_600
    assert prefill_flops(0, shape) == 0


def test_quadratic_term_makes_halving_tokens_save_more_than_half():
    shape = DecoderShape(layers=1, hidden=8, ffn=16)
    assert prefill_flops(500, shape) < prefill_flops(1000, shape) / 2


def test_shape_comes_from_the_text_config(tiny):
    config = tiny("qwen2_vl").model.config.get_text_config()
    assert DecoderShape.from_config(config) == DecoderShape(layers=2, hidden=32, ffn=64)
    with pytest.raises(ValueError, match="intermediate_size"):
        DecoderShape.from_config(object())


def test_negative_tokens_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        prefill_flops(-1, DecoderShape(1, 1, 1))
