"""Qwen2-VL family: merged-patch grid and the M-RoPE positions of kept tokens."""

from __future__ import annotations

import pytest
import torch

from clusterlens.models.vlm import QwenVLAdapter

QWEN = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def test_token_grid_is_the_processor_grid_over_the_merge_size(tiny):
    bundle = tiny("qwen2_vl")
    batch = bundle.batch()
    # 112 x 168 px, 14 px patches merged 2 x 2 -> 28 px tokens
    assert batch["image_grid_thw"].tolist() == [[1, 8, 12]]
    assert QwenVLAdapter(bundle.model).token_grids(batch) == [(4, 6)]
    # Qwen3-VL: 16 px patches -> 32 px tokens over the resized image
    qwen3 = tiny("qwen3_vl")
    assert QwenVLAdapter(qwen3.model).token_grids(qwen3.batch()) == [(4, 5)]


def test_kept_tokens_carry_their_original_multimodal_positions(tiny):
    bundle = tiny("qwen2_vl")
    batch = bundle.batch()
    adapter = QwenVLAdapter(bundle.model)
    mask = torch.zeros(4, 6, dtype=torch.bool)
    mask[1, 2] = mask[3, 5] = True
    prompt = adapter.prepare(batch, adapter.keep_from_grids([mask], batch))
    positions = prompt.position_ids[:, 0].T.tolist()  # (n, 3): (t, h, w) per kept token
    # "user : <|vision_start|>" take 0..2; the image starts at 3: (3, 3 + row, 3 + col)
    assert positions[:3] == [[0, 0, 0], [1, 1, 1], [2, 2, 2]]
    assert positions[3:5] == [[3, 4, 5], [3, 6, 8]]
    # text after the image continues from 3 + max(4, 6) = 9, as in the full prompt
    assert positions[5:] == [[p, p, p] for p in range(9, 18)]
    assert prompt.next_position == 18


@pytest.mark.parametrize("family", QWEN)
def test_pruned_positions_are_the_models_rope_index_at_kept_tokens(tiny, family):
    bundle = tiny(family)
    batch = bundle.batch()
    adapter = QwenVLAdapter(bundle.model)
    full, _ = bundle.model.model.get_rope_index(
        batch["input_ids"],
        mm_token_type_ids=batch["mm_token_type_ids"],
        image_grid_thw=batch["image_grid_thw"],
    )
    keep = (
        torch.rand(
            adapter.prepare(batch).image_tokens_full, generator=torch.Generator().manual_seed(1)
        )
        > 0.5
    )
    prompt = adapter.prepare(batch, keep)
    assert torch.equal(prompt.position_ids, full[..., prompt.sequence_keep])
    assert prompt.next_position == int(full.max()) + 1


def test_qwen3_deepstack_rows_are_pruned_with_the_tokens(tiny):
    bundle = tiny("qwen3_vl")
    batch = bundle.batch()
    adapter = QwenVLAdapter(bundle.model)
    keep = torch.zeros(20, dtype=torch.bool)
    keep[[0, 7, 19]] = True
    prompt = adapter.prepare(batch, keep)
    extra = prompt.language_kwargs
    assert [tuple(layer.shape) for layer in extra["deepstack_visual_embeds"]] == [(3, 32)]
    assert extra["visual_pos_masks"].shape == (1, prompt.tokens_kept)
    assert int(extra["visual_pos_masks"].sum()) == 3


def test_batch_without_token_types_or_image_is_explained(tiny):
    bundle = tiny("qwen2_vl")
    adapter = QwenVLAdapter(bundle.model)
    batch = dict(bundle.batch())
    del batch["mm_token_type_ids"]
    with pytest.raises(ValueError, match="mm_token_type_ids"):
        adapter.prepare(batch)
    text_only = bundle.processor(text=["what is in the image ?"], return_tensors="pt")
    with pytest.raises(ValueError, match="no image"):
        adapter.prepare(text_only)


def test_other_model_types_are_rejected(tiny):
    with pytest.raises(ValueError, match="QwenVLAdapter takes"):
        QwenVLAdapter(tiny("llava").model)
