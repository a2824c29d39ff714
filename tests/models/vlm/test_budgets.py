"""Variable budgets: patches re-encoded from crops at their token budget (Qwen family)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.allocate import allocate
from clusterlens.models.vlm import adapter_for, load_vlm, token_keep_mask
from clusterlens.models.vlm.budgets import plan_crops, processor_token_limits
from clusterlens.models.vlm.tiny import sample_image


def red_corner_allocation(grid: tuple[int, int], token_budget: int, token_range: tuple[int, int]):
    relevance = np.zeros((224, 336), np.float32)
    relevance[:112, :112] = 1.0
    relevance += np.linspace(0, 0.1, 336, dtype=np.float32)[None]
    return allocate(
        relevance, "topk", 6, grid=grid, token_budget=token_budget, token_range=token_range
    )


def test_crop_grids_follow_budget_and_aspect():
    allocation = red_corner_allocation((8, 12), token_budget=40, token_range=(4, 12))
    assert allocation.budgets.tolist() == [12, 12, 12]  # 3 patches fit under 40
    plan = plan_crops(allocation, (8, 12), token_px=28, max_tokens=1280)
    # each patch is one 28 x 28 token on the base grid: square crops of 3 x 4 = 12 tokens
    assert plan.rows.tolist() == [3, 3, 3] and plan.cols.tolist() == [4, 4, 4]
    assert plan.tokens == 36
    crops = plan.images(sample_image(224, 336))
    assert [crop.shape for crop in crops] == [(84, 112, 3)] * 3


def test_patches_whose_budget_fits_their_base_tokens_get_no_crop():
    allocation = red_corner_allocation((2, 3), token_budget=100, token_range=(4, 12))
    # a 2 x 3 allocation grid over an 8 x 12 token grid: each patch covers 16 tokens > 12
    plan = plan_crops(allocation, (8, 12), token_px=28, max_tokens=1280)
    assert len(plan) == 0 and plan.tokens == 0


def test_crops_are_capped_by_the_processor_limit():
    allocation = red_corner_allocation((8, 12), token_budget=400, token_range=(200, 200))
    plan = plan_crops(allocation, (8, 12), token_px=28, max_tokens=50)
    assert (plan.rows * plan.cols <= 50).all() and len(plan) == 2


def test_bad_arguments_are_explained():
    allocation = red_corner_allocation((8, 12), token_budget=40, token_range=(4, 12))
    with pytest.raises(ValueError, match="min_tokens <= max_tokens"):
        plan_crops(allocation, (8, 12), token_px=28, max_tokens=2, min_tokens=4)
    plan = plan_crops(allocation, (8, 12), token_px=28, max_tokens=1280)
    with pytest.raises(ValueError, match="does not match the allocation's image"):
        plan.images(sample_image(100, 100))
    with pytest.raises(ValueError, match="Qwen-family processor"):
        processor_token_limits(object())


@pytest.mark.parametrize("family", ["qwen2_vl", "qwen3_vl"])
def test_prompt_with_crops_keeps_base_tokens_and_every_crop_token(tiny, family):
    bundle = tiny(family)
    loaded = load_vlm(f"tiny:{family}")
    loaded.model = bundle.model
    adapter = adapter_for(bundle.model)
    image = sample_image(224, 336)
    grid = adapter.token_grids(loaded.batch(image, "what is red ?"))[0]
    token_px, low, high = processor_token_limits(loaded.processor)
    allocation = red_corner_allocation(grid, token_budget=40, token_range=(4, 12))
    plan = plan_crops(allocation, grid, token_px, high, low)
    batch = loaded.batch(image, "what is red ?", plan.images(image))
    merge = bundle.model.config.vision_config.spatial_merge_size
    crop_grids = (batch["image_grid_thw"][1:, 1:] // merge).tolist()
    assert crop_grids == np.stack([plan.rows, plan.cols], 1).tolist()
    masks = [token_keep_mask(allocation, *grid)] + [np.ones(g, bool) for g in crop_grids]
    prompt = adapter.prepare(batch, adapter.keep_from_grids(masks, batch))
    assert prompt.image_tokens_kept == len(allocation) + plan.tokens
    with torch.inference_mode():
        reference = bundle.model(**batch).logits  # multi-image prompt, nothing pruned
    logits, _ = adapter.prefill(adapter.prepare(batch))
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)
