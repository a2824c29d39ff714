"""ImageContext: query-free work once per image, reused by every query, checked."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.context import ImageContext
from clusterlens.pipeline import select_patches
from test_pipeline import TopHalfModel, textured


def test_a_context_is_bound_to_its_image(tmp_path):
    path = tmp_path / "a.png"
    Image.fromarray((textured(0) * 255).astype(np.uint8)).save(path)
    context = ImageContext.of(path)
    select_patches(path, None, "topk", 4, context=context)  # the same file: fine
    with pytest.raises(ValueError, match="made for another image"):
        select_patches(textured(1), None, "topk", 4, context=context)
    with pytest.raises(ValueError, match="max_side"):
        select_patches(path, None, "topk", 4, context=context, max_side=64)
    other = ImageContext.of(textured(2))
    with pytest.raises(ValueError, match="not two"):
        select_patches(other, None, "topk", 4, context=context)


def test_second_query_reuses_decoding_model_passes_ways_and_clusters():
    context = ImageContext.of(textured(3))
    model = TopHalfModel()
    first = select_patches(context, "sky", "cluster-cascade", 16, model=model, balancer="fixed")
    second = select_patches(
        context, "the sky", "cluster-cascade", 16, model=model, balancer="fixed"
    )
    cost = second.allocation.to_json()["accounting"]
    assert first.allocation.cost["cached"] == ["decoded image"]
    assert set(cost["cached"]) == {"decoded image", "model passes", "ways", "clusters"}
    assert cost["encoder_calls"] == 0 and first.allocation.cost["encoder_calls"] == 1
    for key in ("total_ms", "encoder_ms", "encoder_gflops", "ways_ms", "clusters_ms", "cached"):
        assert key in cost
    np.testing.assert_array_equal(first.allocation.rows, second.allocation.rows)


def test_negligible_ways_are_not_computed_and_are_reported():
    result = select_patches(textured(4), "sky", "topk", 8, model=TopHalfModel())  # adaptive
    cost = result.allocation.cost
    assert cost["skipped"] == ["information", "salience"] and cost["ways_ms"] == 0.0
    assert result.allocation.meta["balancer_weights"]["information"] == 0.0
    np.testing.assert_array_equal(result.ways[:2], 0)
    fixed = select_patches(textured(4), "sky", "topk", 8, model=TopHalfModel(), balancer="fixed")
    assert fixed.allocation.cost["skipped"] == [] and fixed.ways[:2].any()


def test_lazy_cascade_with_a_model_that_cannot_run_lazily_says_so():
    result = select_patches(textured(5), "sky", "lazy-cascade", 16, model=TopHalfModel())
    assert any("cannot evaluate lazily" in note for note in result.notes)
    reference = select_patches(textured(5), "sky", "topk", 16, model=TopHalfModel())
    assert set(zip(result.allocation.rows, result.allocation.cols, strict=True)) == set(
        zip(reference.allocation.rows, reference.allocation.cols, strict=True)
    )


def test_lazy_cascade_skips_the_coarse_pass_when_windows_cannot_pay():
    from clusterlens.models import load_model

    model = load_model("offline:camvid")
    image = textured(6)
    small_k = select_patches(image, "the road", "lazy-cascade", 4, model=model)
    large_k = select_patches(image, "the road", "lazy-cascade", 512, model=model)
    topk = select_patches(image, "the road", "topk", 512, model=model)
    assert small_k.allocation.cost["encoder_passes"][0].startswith("coarse")
    assert [p.split()[0] for p in large_k.allocation.cost["encoder_passes"]] == ["dense"]
    assert any("from the start" in note for note in large_k.notes)
    assert set(zip(large_k.allocation.rows, large_k.allocation.cols, strict=True)) == set(
        zip(topk.allocation.rows, topk.allocation.cols, strict=True)
    )


def test_groups_of_a_callers_own_cluster_map_are_never_taken_from_the_context():
    context = ImageContext.of(textured(7))
    halves = np.zeros((128, 128), np.int64)
    halves[:, 64:] = 1
    quarters = halves + 2 * (np.arange(128)[:, None] >= 64)
    # the same array twice, then another: a cache keyed by the array's identity could hand
    # back groups of a map that no longer exists (ids are reused after collection)
    for given in (halves, halves, quarters):
        result = select_patches(
            context, None, "hierarchical-cluster", 16, clusters=given, cluster_method="fast"
        )
        assert "clusters" not in result.allocation.cost["cached"]
        kept = result.allocation.clusters
        assert len(np.unique(kept)) <= len(np.unique(given))
