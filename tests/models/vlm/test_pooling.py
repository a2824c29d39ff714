"""Coarse patches (quadtree leaves) as one pooled token each."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from clusterlens.allocate import allocate
from clusterlens.models.vlm import adapter_for, token_groups

SINGLE_GRID = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava")


def quadtree_on(grid: tuple[int, int], budget: int):
    relevance = np.zeros((grid[0] * 10, grid[1] * 10), np.float32)
    relevance[: grid[0] * 5, : grid[1] * 3] = 1.0  # top-left detail, dull elsewhere
    relevance += np.linspace(0, 0.2, relevance.shape[1], dtype=np.float32)[None]
    return allocate(relevance, "quadtree", budget, grid=grid)


def test_groups_give_one_token_per_leaf_inside_the_leaf():
    allocation = quadtree_on((8, 8), budget=10)
    groups = token_groups(allocation, 8, 8)
    assert (groups >= 0).all()  # quadtree leaves tile the grid
    assert len(np.unique(groups)) == len(allocation)
    covered = allocation.coverage_mask()
    assert covered.all()
    for level, row, col in zip(allocation.levels, allocation.rows, allocation.cols, strict=True):
        span = 2 ** int(level)
        block = groups[row * span : (row + 1) * span, col * span : (col + 1) * span]
        representative = int(block.flat[0])
        assert (block == representative).all()
        rep_row, rep_col = divmod(representative, 8)
        assert row * span <= rep_row < (row + 1) * span and col * span <= rep_col < (col + 1) * span


def test_groups_need_the_token_grid():
    with pytest.raises(ValueError, match="allocation on the model's token grid 4x4"):
        token_groups(quadtree_on((8, 8), budget=4), 4, 4)


@pytest.mark.parametrize("family", SINGLE_GRID)
def test_every_token_its_own_group_is_the_unpruned_model(tiny, family):
    bundle = tiny(family)
    batch = bundle.batch()
    adapter = adapter_for(bundle.model)
    count = adapter.prepare(batch).image_tokens_full
    with torch.inference_mode():
        reference = bundle.model(**batch).logits
    logits, _ = adapter.prefill(adapter.prepare(batch, pool=torch.arange(count)))
    torch.testing.assert_close(logits, reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("family", SINGLE_GRID)
def test_each_leaf_becomes_the_mean_of_its_tokens(tiny, family):
    bundle = tiny(family)
    batch = bundle.batch()
    adapter = adapter_for(bundle.model)
    grid = adapter.token_grids(batch)[0]
    allocation = quadtree_on(grid, budget=5)
    pool = adapter.pool_from_allocations([allocation], batch)
    prompt = adapter.prepare(batch, pool=pool)
    assert prompt.image_tokens_kept == len(allocation)
    with torch.inference_mode():
        features = adapter.vision_features(batch).embeds
    representatives = torch.nonzero(prompt.image_keep).squeeze(1)
    expected = torch.stack([features[pool == r].mean(0) for r in representatives])
    image_rows = (batch["input_ids"][0] == adapter.image_token_id)[prompt.sequence_keep]
    torch.testing.assert_close(prompt.inputs_embeds[0, image_rows], expected)


def test_bad_pools_are_explained(tiny):
    bundle = tiny("qwen2_vl")
    batch = bundle.batch()
    adapter = adapter_for(bundle.model)
    with pytest.raises(ValueError, match="pool must be a long vector"):
        adapter.prepare(batch, pool=torch.zeros(3, dtype=torch.long))
    pool = torch.full((24,), 1, dtype=torch.long)
    pool[1] = 0  # token 1 pools into 0, which pools into 1
    with pytest.raises(ValueError, match=r"pool\[i\] == i"):
        adapter.prepare(batch, pool=pool)
    with pytest.raises(ValueError, match="not supported for LLaVA-NeXT"):
        nxt = tiny("llava_next")
        adapter_for(nxt.model).pool_from_allocations([None], nxt.batch())
