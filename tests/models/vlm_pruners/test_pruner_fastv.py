"""FastV: the kept set is the top-k of layer K's attention, and the pruned run is exact."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch
from pruner_helpers import bundle_of, inputs_of, model_logits

from clusterlens.models.vlm.pruners import FastV

TIGHT = {"rtol": 1e-5, "atol": 1e-5}
ALL_FAMILIES = ["qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next"]


@contextmanager
def eager(model):
    model.set_attn_implementation("eager")
    try:
        yield
    finally:
        model.set_attn_implementation("sdpa")


def eager_topk(inputs, layer: int, budget: int) -> list[int]:
    """By hand: the model's own eager attention maps, last query row of layer K, heads mean."""
    adapter = inputs.adapter
    prompt = adapter.prepare(inputs.batch, features=inputs.features)
    with eager(adapter.model), torch.inference_mode():
        output = adapter.language_model(
            inputs_embeds=prompt.inputs_embeds,
            attention_mask=torch.ones(prompt.inputs_embeds.shape[:2], dtype=torch.long),
            position_ids=prompt.position_ids,
            output_attentions=True,
            **prompt.language_kwargs,
        )
    last_row = output.attentions[layer - 1][0, :, -1].mean(dim=0)
    image_rows = inputs.batch["input_ids"][0] == adapter.image_token_id
    scores = last_row[image_rows]
    return sorted(torch.argsort(scores, descending=True, stable=True)[:budget].tolist())


@pytest.mark.parametrize(
    ("family", "layers", "k"),
    [(family, 2, 1) for family in ALL_FAMILIES] + [("qwen2_vl", 4, 2), ("llava", 4, 2)],
)
def test_kept_set_is_the_top_k_of_the_attention_computed_by_hand(family, layers, k):
    inputs = inputs_of(family, layers)
    keep = FastV(layer=k).plan(inputs, 7).keep
    assert int(keep.sum()) == 7
    assert torch.nonzero(keep).squeeze(1).tolist() == eager_topk(inputs, k, 7)


@pytest.mark.parametrize("family", ALL_FAMILIES)
def test_keep_all_reproduces_the_model_logits(family):
    inputs = inputs_of(family)
    fastv = FastV(layer=1)
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features)
    with fastv.pruning(inputs.adapter, inputs.batch, inputs.image_tokens) as state:
        logits, _ = inputs.adapter.prefill(prompt)
    assert bool(state.image_keep.all())
    torch.testing.assert_close(logits, model_logits(inputs), **TIGHT)


def layer_by_layer(inputs, k: int, budget: int, appended: list[int] = ()) -> torch.Tensor:
    """The pruned run written out, without a cache: layers < K on every row, the rest on
    the kept rows; ``appended`` tokens (generated ones) follow the prompt. Returns the
    logits of the last ``len(appended) + 1`` rows."""
    adapter = inputs.adapter
    keep_image = FastV(layer=k).plan(inputs, budget).keep
    prompt = adapter.prepare(inputs.batch, features=inputs.features)
    keep = prompt.sequence_keep.clone()
    keep[inputs.batch["input_ids"][0] == adapter.image_token_id] = keep_image
    language = adapter.language_model
    with torch.inference_mode():
        new = torch.tensor([list(appended)], dtype=torch.long)
        hidden = torch.cat([prompt.inputs_embeds, language.get_input_embeddings()(new)], dim=1)
        steps = prompt.next_position + torch.arange(len(appended))
        positions = torch.cat(
            [prompt.position_ids, steps.expand(*prompt.position_ids.shape[:-1], -1)], dim=-1
        )
        keep = torch.cat([keep, torch.ones(len(appended), dtype=torch.bool)])
        rotary = language.rotary_emb(hidden, positions)
        for index, layer in enumerate(language.layers):
            if index == k:
                hidden = hidden[:, keep]
                rotary = tuple(part[..., keep, :] for part in rotary)
            hidden = layer(hidden, attention_mask=None, position_embeddings=rotary)
        return adapter.model.lm_head(language.norm(hidden))[0, -(len(appended) + 1) :]


@pytest.mark.parametrize(("family", "layers", "k"), [("qwen2_vl", 4, 2), ("llava", 4, 2)])
def test_pruned_prefill_equals_the_layers_run_by_hand(family, layers, k):
    inputs = inputs_of(family, layers)
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features)
    with FastV(layer=k).pruning(inputs.adapter, inputs.batch, 5):
        logits, _ = inputs.adapter.prefill(prompt, last_only=True)
    torch.testing.assert_close(logits[0, -1], layer_by_layer(inputs, k, 5)[-1], **TIGHT)
    assert not torch.allclose(logits[0, -1], model_logits(inputs)[0, -1], **TIGHT)


@pytest.mark.parametrize("family", ["qwen2_vl", "llava"])
def test_decoding_on_the_pruned_cache_equals_the_uncached_layers_by_hand(family):
    inputs = inputs_of(family, 4)
    tokens = FastV(layer=2).answer(inputs, 5, max_new_tokens=4).token_ids.tolist()
    assert len(tokens) == 4
    by_hand = layer_by_layer(inputs, 2, 5, appended=tokens[:-1]).argmax(dim=-1).tolist()
    assert by_hand == tokens


def test_answer_decodes_with_the_pruned_cache_and_counts_flops():
    inputs = inputs_of("llava", 4)
    answer = FastV(layer=2).answer(inputs, 5, max_new_tokens=4)
    assert answer.image_tokens_kept == 5
    assert answer.tokens_kept == answer.tokens_full - (answer.image_tokens_full - 5)
    assert 0 < answer.flops_kept < answer.flops_full
    prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features)
    with FastV(layer=2).pruning(inputs.adapter, inputs.batch, 5):
        logits, _ = inputs.adapter.prefill(prompt, last_only=True)
    assert int(answer.token_ids[0]) == int(logits[0, -1].argmax())
    assert len(answer.token_ids) >= 1


def test_layer_checks_name_the_problem():
    inputs = inputs_of("qwen2_vl")
    with pytest.raises(ValueError, match="below the model's 2 decoder layers"):
        FastV(layer=2).plan(inputs, 4)
    with pytest.raises(ValueError, match="at least 1"):
        FastV(layer=0)
    assert FastV().layer == 2
    assert bundle_of("qwen2_vl") is bundle_of("qwen2_vl")


def test_qwen3_needs_k_at_least_its_deepstack_layers():
    inputs = inputs_of("qwen3_vl", 4)
    vision = inputs.adapter.model.config.vision_config
    original = vision.deepstack_visual_indexes
    vision.deepstack_visual_indexes = [0, 1, 2]  # the released models' three
    try:
        with pytest.raises(ValueError, match="needs K >= 3"):
            FastV(layer=2).check_family(inputs.adapter)
        FastV(layer=3).check_family(inputs.adapter)
    finally:
        vision.deepstack_visual_indexes = original
