"""The attention probe: weights as the direct formula gives them, the model left as it was."""

from __future__ import annotations

import pytest
import torch
from pruner_helpers import inputs_of, model_logits

from clusterlens.models.vlm.pruners._attention import (
    ROW_BLOCK,
    _head_mean_weights,
    attention_probe,
)


def direct(query, key, rows):
    key = key.repeat_interleave(query.shape[1] // key.shape[1], dim=1)
    weights = torch.softmax(query @ key.transpose(-1, -2) * query.shape[-1] ** -0.5, dim=-1)
    picked = {"last": weights[:, :, -1:], "first": weights[:, :, :1], "mean": weights}[rows]
    return picked.mean(dim=(1, 2))


@pytest.mark.parametrize("rows", ["last", "first", "mean"])
def test_weights_equal_the_direct_formula_with_grouped_heads_and_row_blocks(rows):
    generator = torch.Generator().manual_seed(0)
    query = torch.randn(2, 4, 2 * ROW_BLOCK + 7, 8, generator=generator)
    key = torch.randn(2, 2, 2 * ROW_BLOCK + 7, 8, generator=generator)
    got = _head_mean_weights(query, key, None, None, rows)
    assert got.shape == (2, key.shape[2])
    torch.testing.assert_close(got, direct(query, key, rows), rtol=1e-5, atol=1e-7)


def test_masks_are_applied_bool_or_additive():
    query, key = torch.randn(1, 2, 3, 4), torch.randn(1, 2, 3, 4)
    causal = torch.tril(torch.ones(3, 3, dtype=torch.bool))[None, None]
    first = _head_mean_weights(query, key, causal, None, "first")
    assert torch.allclose(first, torch.tensor([[1.0, 0.0, 0.0]]))
    additive = torch.zeros(1, 1, 3, 3).masked_fill(~causal, float("-inf"))
    torch.testing.assert_close(
        _head_mean_weights(query, key, additive, None, "mean"),
        _head_mean_weights(query, key, causal, None, "mean"),
    )


def test_the_probe_records_without_changing_outputs_and_restores_the_config():
    inputs = inputs_of("llava")
    attention = inputs.adapter.language_model.layers[1].self_attn
    config = attention.config
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features)
    with attention_probe(attention, "last", min_queries=2) as record:
        logits, _ = inputs.adapter.prefill(prompt)
    assert attention.config is config and not hasattr(attention, "_clusterlens_attention_record")
    assert len(record.calls) == 1 and record.calls[0].shape == (1, prompt.tokens_kept)
    assert float(record.calls[0].sum()) == pytest.approx(1.0, abs=1e-5)
    torch.testing.assert_close(logits, model_logits(inputs), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="rows must be one of"):
        with attention_probe(attention, "middle"):
            pass
