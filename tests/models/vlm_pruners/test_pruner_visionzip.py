"""VisionZip: the vision attention each family is ranked by, the zip, keep-all exactness."""

from __future__ import annotations

import sys

import pytest
import torch
from pruner_helpers import inputs_of, model_logits

from clusterlens.models.vlm.pruners import VisionZip, vision_features_with_attention
from clusterlens.models.vlm.pruners.visionzip import split_budget, zip_tokens

TIGHT = {"rtol": 1e-5, "atol": 1e-5}
QWEN = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl"]


def test_llava_scores_are_the_cls_attention_of_the_feature_layer():
    inputs = inputs_of("llava")
    model = inputs.adapter.model
    features, scores = vision_features_with_attention(inputs.adapter, inputs.batch)
    torch.testing.assert_close(features.embeds, inputs.features.embeds)
    model.set_attn_implementation("eager")
    try:
        with torch.inference_mode():
            output = model.model.vision_tower(inputs.batch["pixel_values"], output_attentions=True)
    finally:
        model.set_attn_implementation("sdpa")
    # feature layer -2 of a 2-layer tower is the output of layer 0
    expected = output.attentions[0][:, :, 0, 1:].mean(dim=1).reshape(-1)
    torch.testing.assert_close(scores, expected, **TIGHT)


def qwen_scores_by_hand(inputs) -> torch.Tensor:
    """Mean attention received in the last full block, from its inputs, per merged token."""
    visual = inputs.adapter.model.model.visual
    full_blocks = getattr(visual, "fullatt_block_indexes", None) or [len(visual.blocks) - 1]
    attention = visual.blocks[full_blocks[-1]].attn
    seen = {}

    def keep_inputs(module, args, kwargs):
        seen["hidden"], seen["rotary"] = args[0], kwargs["position_embeddings"]

    handle = attention.register_forward_pre_hook(keep_inputs, with_kwargs=True)
    try:
        inputs.adapter.vision_features(inputs.batch)
    finally:
        handle.remove()
    hidden = seen["hidden"]
    rotate = sys.modules[type(attention).__module__].apply_rotary_pos_emb_vision
    q, k, _ = attention.qkv(hidden).reshape(len(hidden), 3, attention.num_heads, -1).unbind(1)
    q, k = rotate(q, k, *seen["rotary"])
    weights = torch.softmax(torch.einsum("qhd,khd->hqk", q, k) * attention.scaling, dim=-1)
    received = weights.mean(dim=(0, 1))  # one image: a single chunk
    per_token = received.reshape(-1, visual.spatial_merge_size**2).mean(dim=1)
    if hasattr(visual, "fullatt_block_indexes"):
        from transformers.vision_utils import get_vision_window_index

        order, _ = get_vision_window_index(
            torch.as_tensor(inputs.batch["image_grid_thw"]),
            spatial_merge_size=visual.spatial_merge_size,
            window_size=visual.window_size,
            patch_size=visual.patch_size,
        )
        assert not torch.equal(order, torch.arange(len(order)))  # the order really moves
        per_token = per_token[torch.argsort(order)]
    return per_token.detach()


@pytest.mark.parametrize("family", QWEN)
def test_qwen_scores_are_the_mean_attention_received_computed_by_hand(family):
    inputs = inputs_of(family)
    _, scores = vision_features_with_attention(inputs.adapter, inputs.batch)
    assert scores.shape == (inputs.image_tokens,)
    torch.testing.assert_close(scores, qwen_scores_by_hand(inputs), **TIGHT)


def test_zip_keeps_the_budget_dominant_first_and_merges_the_rest_into_targets():
    generator = torch.Generator().manual_seed(0)
    features, scores = torch.randn(40, 8, generator=generator), torch.rand(40, generator=generator)
    pool = zip_tokens(features, scores, 16)
    kept = torch.nonzero(pool == torch.arange(40)).squeeze(1)
    dominant, contextual = split_budget(16)
    assert len(kept) == 16 and (dominant, contextual) == (14, 2)
    top = set(torch.argsort(scores, descending=True)[:dominant].tolist())
    assert top <= set(kept.tolist())
    targets = sorted(set(kept.tolist()) - top)
    unit = torch.nn.functional.normalize(features, dim=-1)
    for token in set(range(40)) - set(kept.tolist()):
        assert int(pool[token]) in targets  # nothing dropped: every other token merges
        similarity = unit[token] @ unit[targets].T
        assert int(pool[token]) == targets[int(similarity.argmax())]


@pytest.mark.parametrize("family", ["llava", *QWEN])
def test_keep_all_reproduces_the_model_logits(family):
    inputs = inputs_of(family)
    plan = VisionZip().plan(inputs, inputs.image_tokens)
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features, **plan.prepare_kwargs())
    logits, _ = inputs.adapter.prefill(prompt)
    torch.testing.assert_close(logits, model_logits(inputs), **TIGHT)


def test_pruned_prompt_has_the_budget_and_merged_embeddings():
    inputs = inputs_of("qwen2_vl")
    plan = VisionZip().plan(inputs, 8)
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features, **plan.prepare_kwargs())
    assert prompt.image_tokens_kept == 8
    target = int(plan.pool[(plan.pool >= 0) & (plan.pool != torch.arange(len(plan.pool)))][0])
    members = torch.nonzero(plan.pool == target).squeeze(1)
    image_rows = torch.nonzero(prompt.sequence_keep[prompt.sequence_keep]).squeeze(1)
    assert len(members) > 1 and len(image_rows) == prompt.tokens_kept
    full = inputs.adapter.prepare(inputs.batch, features=inputs.features)
    image_row_of = torch.nonzero(inputs.batch["input_ids"][0] == inputs.adapter.image_token_id)
    kept_row = int(prompt.sequence_keep[: int(image_row_of[target])].sum())
    expected = full.inputs_embeds[0, image_row_of[members].squeeze(1)].mean(dim=0)
    torch.testing.assert_close(prompt.inputs_embeds[0, kept_row], expected, **TIGHT)


def test_llava_next_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="not 'llava_next'"):
        VisionZip().plan(inputs_of("llava_next"), 8)
