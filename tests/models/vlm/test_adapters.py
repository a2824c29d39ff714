"""Every family: keeping all tokens is the unpruned model; pruning is exact masking."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from clusterlens.models.vlm import prefill_flops

TIGHT = {"rtol": 1e-5, "atol": 1e-5}


def every_third(count: int) -> torch.Tensor:
    keep = torch.zeros(count, dtype=torch.bool)
    keep[::3] = True
    return keep


def test_keeping_every_token_reproduces_the_model_logits(bundle, adapter, batch):
    with torch.inference_mode():
        reference = bundle.model(**batch).logits
    logits, _ = adapter.prefill(adapter.prepare(batch))
    assert logits.shape == reference.shape
    torch.testing.assert_close(logits, reference, **TIGHT)


def test_pruned_prompt_equals_the_full_model_with_pruned_tokens_masked_out(bundle, adapter, batch):
    prompt = adapter.prepare(batch, every_third(adapter.prepare(batch).image_tokens_full))
    full_positions = adapter.full_positions(batch)
    with torch.inference_mode():
        # the model's own language model on the full embedded prompt, pruned keys masked
        full = adapter.prepare(batch)
        hidden = adapter.language_model(
            inputs_embeds=full.inputs_embeds,
            attention_mask=prompt.sequence_keep[None].long(),
            position_ids=full_positions,
            **full.language_kwargs,
        ).last_hidden_state
        reference = bundle.model.lm_head(hidden)[:, prompt.sequence_keep]
    logits, _ = adapter.prefill(prompt)
    torch.testing.assert_close(logits, reference, **TIGHT)
    with torch.inference_mode():
        unpruned_last = bundle.model(**batch).logits[0, -1]
    assert not torch.allclose(logits[0, -1], unpruned_last, **TIGHT)  # pruning did something


def test_sequence_shrinks_by_exactly_the_pruned_image_tokens(adapter, batch):
    input_ids = batch["input_ids"][0]
    full = adapter.prepare(batch)
    assert full.image_tokens_full == int((input_ids == adapter.image_token_id).sum())
    keep = every_third(full.image_tokens_full)
    prompt = adapter.prepare(batch, keep)
    pruned = full.image_tokens_full - int(keep.sum())
    assert prompt.image_tokens_kept == int(keep.sum())
    assert prompt.tokens_full == input_ids.numel()
    assert prompt.tokens_kept == input_ids.numel() - pruned
    assert prompt.inputs_embeds.shape[1] == prompt.tokens_kept
    assert prompt.position_ids.shape[-1] == prompt.tokens_kept
    # text rows are never dropped
    assert bool(prompt.sequence_keep[input_ids != adapter.image_token_id].all())


def test_generation_with_every_token_matches_transformers_generate(bundle, adapter, batch):
    with torch.inference_mode():
        reference = bundle.model.generate(**batch, max_new_tokens=5, do_sample=False)
    expected = reference[0, batch["input_ids"].shape[1] :]
    answer = adapter.generate(adapter.prepare(batch), max_new_tokens=5)
    assert answer.token_ids.tolist() == expected.tolist()
    assert answer.flops_kept == answer.flops_full


def test_pruned_generation_with_cache_equals_recomputing_without_cache(adapter, batch):
    prompt = adapter.prepare(batch, every_third(adapter.prepare(batch).image_tokens_full))
    answer = adapter.generate(prompt, max_new_tokens=4)
    assert len(answer.token_ids) == 4
    embed = adapter.language_model.get_input_embeddings()
    embeds, positions = prompt.inputs_embeds, prompt.position_ids
    for step, token in enumerate(answer.token_ids.tolist()):
        longer = replace(prompt, inputs_embeds=embeds, position_ids=positions)
        if "visual_pos_masks" in prompt.language_kwargs:  # Qwen3-VL: new rows are text
            mask = prompt.language_kwargs["visual_pos_masks"]
            padded = torch.cat([mask, mask.new_zeros(1, step)], dim=1)
            longer.language_kwargs = prompt.language_kwargs | {"visual_pos_masks": padded}
        logits, _ = adapter.prefill(longer)
        assert int(logits[0, -1].argmax()) == token
        with torch.inference_mode():
            embeds = torch.cat([embeds, embed(torch.tensor([[token]]))], dim=1)
        new = torch.full_like(positions[..., :1], prompt.next_position + step)
        positions = torch.cat([positions, new], dim=-1)
    shape = adapter.decoder_shape
    assert answer.flops_kept == prefill_flops(prompt.tokens_kept, shape)
    assert answer.flops_full == prefill_flops(prompt.tokens_full, shape)
    assert answer.flops_kept < answer.flops_full


def test_keep_nothing_leaves_the_text(adapter, batch):
    full = adapter.prepare(batch)
    prompt = adapter.prepare(batch, torch.zeros(full.image_tokens_full, dtype=torch.bool))
    assert prompt.tokens_kept == full.tokens_full - full.image_tokens_full
    logits, _ = adapter.prefill(prompt)
    assert torch.isfinite(logits).all()


@pytest.mark.parametrize(
    "keep",
    [torch.ones(3, dtype=torch.bool), torch.ones(1000), [True, False]],
    ids=["wrong-length", "not-bool", "list-wrong-length"],
)
def test_bad_keep_vectors_are_rejected(adapter, batch, keep):
    with pytest.raises(ValueError, match="keep must be a bool vector"):
        adapter.prepare(batch, keep)


def test_batch_of_two_prompts_is_rejected(adapter, batch):
    doubled = dict(batch)
    doubled["input_ids"] = batch["input_ids"].repeat(2, 1)
    with pytest.raises(ValueError, match=r"shape \(1, L\)"):
        adapter.prepare(doubled)


def test_keep_mask_must_match_the_token_grid(adapter, batch):
    rows, cols = adapter.token_grids(batch)[0]
    with pytest.raises(ValueError, match="does not match the image's token grid"):
        adapter.keep_from_grids([torch.ones(rows + 1, cols, dtype=torch.bool)], batch)
    with pytest.raises(ValueError, match="one keep mask per image"):
        adapter.keep_from_grids([], batch)
