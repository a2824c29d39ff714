"""Answer a question about an image with a VLM that sees only the kept patches.

image + question -> ``select_patches`` on the VLM's own token grid -> the adapter drops
the other image tokens (keeping the M-RoPE / 1D positions of the rest) -> greedy answer,
with the FastV prefill FLOPs estimate against the full image: per decoder layer
``4 n d^2 + 2 n^2 d + 2 n d m`` (n tokens, d hidden size, m FFN size), summed over the
layers. It sits beside ``pipeline.py`` for the same reason: it composes capabilities.
The command line is ``clusterlens ask`` (``cli/ask.py``).

The field's token-pruning baselines (``fastv``, ``visionzip``, ``divprune``,
``cdpruner``: :mod:`clusterlens.models.vlm.pruners`) are strategies here too: they
choose from the VLM's own features or attention instead of a relevance model.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

DEFAULT_STRATEGY = "mip-cascade"
#: Longer side images are decoded at: above a VLM's own input limit, small enough that a
#: 12000x9000 photo never needs gigabytes of float pixels.
ASK_MAX_SIDE = 2048
COARSE_MODES = ("pool", "cover")
#: Token pruners ``ask`` takes as a strategy ("all" is ``baseline=True``'s business).
PRUNER_STRATEGIES = ("fastv", "visionzip", "divprune", "cdpruner")


@dataclass
class AskResult:
    """An answer and its accounting (times in seconds)."""

    answer: str
    image_tokens_kept: int
    image_tokens_full: int
    tokens_kept: int
    tokens_full: int
    token_grid: tuple[int, int]
    flops_kept: int
    flops_full: int
    prefill_s: float
    generate_s: float
    total_s: float
    stages_s: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    baseline: dict[str, Any] | None = None
    #: FLOPs spent choosing the tokens (allocation: the relevance model's passes); None
    #: where the method does not count them
    select_flops: int | None = None

    @property
    def flops_ratio_with_selection(self) -> float | None:
        """(kept prefill + selection) / full prefill: the cost a user pays, end to end
        in the language model and the chooser (the vision tower runs in full either way)."""
        if self.select_flops is None:
            return None
        return (self.flops_kept + self.select_flops) / max(self.flops_full, 1)

    def to_json(self) -> dict[str, Any]:
        payload = dict(self.__dict__)
        payload["token_grid"] = list(self.token_grid)
        payload["flops_ratio"] = round(self.flops_kept / max(self.flops_full, 1), 4)
        with_selection = self.flops_ratio_with_selection
        payload["flops_ratio_with_selection"] = (
            None if with_selection is None else round(with_selection, 4)
        )
        return payload


def answer_question(
    image: Any,
    question: str,
    vlm: str,
    strategy: str = DEFAULT_STRATEGY,
    budget: int | None = None,
    *,
    max_new_tokens: int = 32,
    relevance_model: str | None = None,
    min_match: float | None = None,
    seed: int = 0,
    baseline: bool = False,
    coarse: str = "pool",
    token_budget: int | None = None,
    token_range: tuple[int, int] = (64, 400),
    max_side: int | None = ASK_MAX_SIDE,
) -> AskResult:
    """Select patches for ``question`` and answer it with ``vlm`` on the kept tokens only.

    Args:
        image: a path or anything :func:`clusterlens.image.load_image` accepts.
        question: the question (also the relevance query).
        vlm: local folder, cached Hugging Face id or ``tiny:<family>``.
        strategy: allocation strategy.
        budget: image tokens to keep (default: a quarter of the model's grid).
        relevance_model: the query model (``offline:camvid`` by default; ``open_clip:`` /
            ``hf:`` CLIPs for open vocabulary), and ``min_match`` its matcher threshold
            (see :func:`clusterlens.pipeline.select_patches`).
        baseline: also answer with every image token, for comparison (after one
            untimed warm-up prefill, so the two timings compare).
        coarse: what a coarse patch (a quadtree leaf over 2^k x 2^k tokens) becomes:
            "pool" -- one token, the mean of its tokens, at its centre's position (the
            prompt then holds one token per patch); "cover" -- all its tokens.
        token_budget, token_range: variable budgets (Qwen family): patches get
            ``token_range`` tokens by relevance under ``token_budget`` in all, and a
            patch whose budget exceeds its base tokens is added as a crop of that many
            tokens (see :mod:`clusterlens.models.vlm.budgets`).
        max_side: larger images are decoded with this longer side (None: full size);
            VLM processors shrink images far below a 12000x9000 photo anyway.
    """
    from clusterlens.image import load_image
    from clusterlens.models.vlm import load_vlm, prefill_flops
    from clusterlens.pipeline import select_patches
    from clusterlens.relevance.source import selection_flops

    started = time.perf_counter()
    stages: dict[str, float] = {}
    loaded = load_vlm(vlm)
    stages["load_vlm"] = time.perf_counter() - started
    notes = ["random weights (tiny model): the answer is nonsense"] if loaded.random_weights else []
    _check_budget_support(loaded, token_budget)
    rgb = load_image(image, max_side=max_side)
    batch = full_image = loaded.batch(rgb, question)
    full_tokens = int(full_image["input_ids"].shape[1])
    rows, cols = loaded.adapter.token_grids(batch)[0]
    kept_budget = max(1, rows * cols // 4) if budget is None else budget
    if kept_budget > rows * cols:
        notes.append(
            f"budget {kept_budget} exceeds the model's {rows}x{cols} = {rows * cols} image "
            "tokens: keeping them all"
        )
    if strategy in PRUNER_STRATEGIES:
        if token_budget is not None:
            raise ValueError(f"--token-budget needs an allocation strategy, not {strategy!r}")
        pruned = _answer_with_pruner(loaded, batch, question, strategy, kept_budget, max_new_tokens)
        stages.update(pruned.pop("stages"))
        notes += pruned.pop("notes")
        result = AskResult(
            **pruned,
            token_grid=(rows, cols),
            total_s=time.perf_counter() - started,
            stages_s=stages,
            notes=notes,
        )
        if baseline:
            result.baseline = _full_answer(loaded, full_image, max_new_tokens)
        return result
    mark = time.perf_counter()
    selection = select_patches(
        rgb,
        question,
        strategy,
        kept_budget,
        model=relevance_model,
        min_match=min_match,
        grid=(rows, cols),
        seed=seed,
        token_budget=token_budget,
        token_range=token_range,
    )
    stages["select"] = time.perf_counter() - mark
    notes += selection.notes
    mark = time.perf_counter()
    base = _pruned_base(loaded.adapter, batch, selection.allocation, coarse, notes)
    if token_budget is not None:
        crops = _budget_crops(loaded, rgb, selection.allocation, (rows, cols), notes)
        batch = loaded.batch(rgb, question, crops)
        base = _with_crop_tokens(loaded.adapter, batch, base)
    prompt = loaded.adapter.prepare(batch, **base)
    stages["vision_and_embed"] = time.perf_counter() - mark
    if baseline:
        # one untimed prefill first, so neither run pays the first-call warm-up
        mark = time.perf_counter()
        loaded.adapter.prefill(prompt)
        stages["warmup"] = time.perf_counter() - mark
    answer = loaded.adapter.generate(prompt, max_new_tokens, loaded.stop_token_ids())
    result = AskResult(
        answer=loaded.decode(answer.token_ids),
        image_tokens_kept=prompt.image_tokens_kept,
        image_tokens_full=rows * cols,
        tokens_kept=prompt.tokens_kept,
        tokens_full=full_tokens,
        token_grid=(rows, cols),
        flops_kept=answer.flops_kept,
        # the reference is always the plain full image, crops or not
        flops_full=prefill_flops(full_tokens, loaded.adapter.decoder_shape),
        prefill_s=answer.prefill_s,
        generate_s=answer.total_s,
        total_s=time.perf_counter() - started,
        stages_s=stages,
        notes=notes,
        select_flops=selection_flops(selection.allocation.cost),
    )
    if baseline:
        result.baseline = _full_answer(loaded, full_image, max_new_tokens)
    return result


def _full_answer(loaded: Any, full_image: Any, max_new_tokens: int) -> dict[str, Any]:
    """The answer with every image token, for comparison."""
    full = loaded.adapter.generate(
        loaded.adapter.prepare(full_image), max_new_tokens, loaded.stop_token_ids()
    )
    return {
        "answer": loaded.decode(full.token_ids),
        "prefill_s": full.prefill_s,
        "generate_s": full.total_s,
    }


def _answer_with_pruner(
    loaded: Any, batch: Any, question: str, name: str, budget: int, max_new_tokens: int
) -> dict[str, Any]:
    """Answer with a token-pruning baseline; the :class:`AskResult` fields it fills."""
    from clusterlens.models.vlm.pruners import (
        PruningInputs,
        get_pruner,
        vision_features_with_attention,
    )

    pruner = get_pruner(name)
    pruner.check_family(loaded.adapter)
    started = time.perf_counter()
    attention = None
    with torch.inference_mode():
        if name == "visionzip":  # it ranks by the tower's attention, recorded in this pass
            features, attention = vision_features_with_attention(loaded.adapter, batch)
        else:
            features = loaded.adapter.vision_features(batch)
    vision_s = time.perf_counter() - started
    inputs = PruningInputs(
        loaded.adapter, batch, features, question, loaded.processor.tokenizer, attention
    )
    answer = pruner.answer(inputs, budget, max_new_tokens, loaded.stop_token_ids())
    return {
        "answer": loaded.decode(answer.token_ids),
        "image_tokens_kept": answer.image_tokens_kept,
        "image_tokens_full": answer.image_tokens_full,
        "tokens_kept": answer.tokens_kept,
        "tokens_full": answer.tokens_full,
        "flops_kept": answer.flops_kept,
        "flops_full": answer.flops_full,
        "select_flops": answer.select_flops,
        "prefill_s": answer.prefill_s,
        "generate_s": answer.generate_s,
        "stages": {"vision": vision_s, "select": answer.select_s},
        "notes": list(answer.notes),
    }


def _pruned_base(
    adapter: Any, batch: Any, allocation: Any, coarse: str, notes: list[str]
) -> dict[str, Any]:
    """``keep`` (or ``pool``) for the base image; coarse patches pooled if asked."""
    if coarse not in COARSE_MODES:
        raise ValueError(f"--coarse must be one of {COARSE_MODES}, got {coarse!r}")
    from clusterlens.models.vlm import LlavaNextAdapter

    has_coarse = bool((allocation.levels > 0).any())
    if coarse == "pool" and has_coarse and not isinstance(adapter, LlavaNextAdapter):
        notes.append(f"{len(allocation)} patches, coarse ones pooled into one token each")
        return {"pool": adapter.pool_from_allocations([allocation], batch)}
    return {"keep": adapter.keep_from_allocations([allocation], batch)}


def _check_budget_support(loaded: Any, token_budget: int | None) -> None:
    from clusterlens.models.vlm import QwenVLAdapter

    if token_budget is not None and not isinstance(loaded.adapter, QwenVLAdapter):
        raise ValueError(
            "--token-budget needs a Qwen-family VLM (multi-image prompts at any size); "
            f"{loaded.name} is not one"
        )


def _budget_crops(
    loaded: Any, rgb: Any, allocation: Any, grid: tuple[int, int], notes: list[str]
) -> list[Any]:
    """One crop per patch whose token budget exceeds what it covers on the base image.

    The base image keeps its tokens (the patches' place in the image); each crop, cut
    from the full-resolution image, becomes one more image of about ``budget`` tokens.
    """
    from clusterlens.models.vlm.budgets import plan_crops, processor_token_limits

    token_px, low, high = processor_token_limits(loaded.processor)
    plan = plan_crops(allocation, grid, token_px, high, low)
    notes.append(f"{len(plan)} patches re-encoded from crops: {plan.tokens} more image tokens")
    return plan.images(rgb)


def _with_crop_tokens(adapter: Any, batch: Any, base: dict[str, Any]) -> dict[str, Any]:
    """Extend the base image's keep/pool vector over the crops, which are kept whole."""
    crop_tokens = sum(rows * cols for rows, cols in adapter.token_grids(batch)[1:])
    if "pool" in base:
        start = len(base["pool"])
        return {"pool": torch.cat([base["pool"], torch.arange(start, start + crop_tokens)])}
    return {"keep": torch.cat([base["keep"], torch.ones(crop_tokens, dtype=torch.bool)])}
