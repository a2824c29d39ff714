"""LLaVA-1.5 and LLaVA-NeXT: CLIP grids, 1D positions (original or compact)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.models.vlm import LlavaAdapter, LlavaNextAdapter


def test_token_grid_is_image_size_over_patch_size(tiny):
    bundle = tiny("llava")
    batch = bundle.batch()
    adapter = LlavaAdapter(bundle.model)
    assert adapter.token_grids(batch) == [(6, 6)]  # 48 px / 8 px (LLaVA-1.5: 336 / 14 = 24)
    assert int((batch["input_ids"] == adapter.image_token_id).sum()) == 36


def test_original_positions_keep_gaps_and_compact_positions_renumber(tiny):
    bundle = tiny("llava")
    batch = bundle.batch()
    mask = torch.zeros(6, 6, dtype=torch.bool)
    mask[0, 0] = mask[5, 5] = True
    original = LlavaAdapter(bundle.model)
    prompt = original.prepare(batch, original.keep_from_grids([mask], batch))
    # "user :" = 0, 1; image tokens 2..37; (0, 0) -> 2, (5, 5) -> 2 + 35 = 37; text 38..45
    assert prompt.position_ids[0].tolist() == [0, 1, 2, 37, *range(38, 46)]
    assert prompt.next_position == 46
    compact = LlavaAdapter(bundle.model, positions="compact")
    renumbered = compact.prepare(batch, compact.keep_from_grids([mask], batch))
    assert renumbered.position_ids[0].tolist() == list(range(12))
    assert renumbered.next_position == 12
    torch.testing.assert_close(renumbered.inputs_embeds, prompt.inputs_embeds)
    first, _ = original.prefill(prompt)
    second, _ = compact.prefill(renumbered)
    assert not torch.allclose(first[0, -1], second[0, -1])  # positions reach the logits


def test_bad_arguments_are_explained(tiny):
    bundle = tiny("llava")
    with pytest.raises(ValueError, match="positions must be one of"):
        LlavaAdapter(bundle.model, positions="shifted")
    with pytest.raises(ValueError, match="LlavaAdapter takes 'llava'"):
        LlavaAdapter(tiny("qwen2_vl").model)


def test_llava_next_mask_covers_base_grid_tiles_and_row_newlines(tiny):
    bundle = tiny("llava_next")
    batch = bundle.batch()
    adapter = LlavaNextAdapter(bundle.model)
    assert adapter.token_grids(batch) == [(6, 8)]
    # 4 x 4 base grid, then 6 rows of 8 tile tokens + 1 newline
    assert int((batch["input_ids"] == adapter.image_token_id).sum()) == 16 + 6 * 9
    mask = np.zeros((6, 8), bool)
    mask[:3, :4] = True  # the top-left quarter of the image
    keep = adapter.keep_from_grids([mask], batch)
    base, tiles = keep[:16].reshape(4, 4), keep[16:].reshape(6, 9)
    expected_base = np.zeros((4, 4), bool)
    expected_base[:2, :2] = True
    assert np.array_equal(base.numpy(), expected_base)
    assert np.array_equal(tiles[:, :8].numpy(), mask)
    assert tiles[:, 8].tolist() == [True, True, True, False, False, False]  # newlines
    prompt = adapter.prepare(batch, keep)
    assert prompt.image_tokens_kept == 4 + 12 + 3


def test_llava_next_needs_the_default_feature_strategy(tiny):
    bundle = tiny("llava_next")
    bundle.model.config.vision_feature_select_strategy = "full"
    try:
        with pytest.raises(ValueError, match="vision_feature_select_strategy='default'"):
            LlavaNextAdapter(bundle.model)
    finally:
        bundle.model.config.vision_feature_select_strategy = "default"


def test_full_feature_strategy_keeps_the_cls_token_first(tiny):
    import transformers as tf

    bundle = tiny("llava")
    config = bundle.model.config
    config.vision_feature_select_strategy = "full"
    try:
        processor = tf.LlavaProcessor(
            image_processor=bundle.processor.image_processor,
            tokenizer=bundle.processor.tokenizer,
            patch_size=8,
            vision_feature_select_strategy="full",
            num_additional_image_tokens=1,
        )
        batch = processor(images=[bundle.image], text=[bundle.prompt], return_tensors="pt")
        adapter = LlavaAdapter(bundle.model)
        assert adapter.extra_tokens_per_image == 1
        assert int((batch["input_ids"] == adapter.image_token_id).sum()) == 1 + 36
        with torch.inference_mode():
            reference = bundle.model(**batch).logits
        logits, _ = adapter.prefill(adapter.prepare(batch))
        torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
        keep = adapter.keep_from_grids([torch.zeros(6, 6, dtype=torch.bool)], batch)
        assert keep.tolist() == [True] + [False] * 36  # CLS kept, the grid pruned
    finally:
        config.vision_feature_select_strategy = "default"
