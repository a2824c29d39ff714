"""FastV: after layer K, drop the image tokens the last token attends to least.

Chen et al., "An Image is Worth 1/2 Tokens After Layer 2: Plug-and-Play Inference
Acceleration for Large Vision-Language Models", ECCV 2024, arXiv:2403.06764.

The language model runs its first K layers (default 2) on the whole prompt. The
attention weights of layer K (the K-th layer, index K-1), averaged over heads, **from
the last token of the prompt** to each image token rank the image tokens -- the
paper's reference implementation reads this row; we follow it. The ``budget``
best-ranked image tokens, and every text token, go on through layers K.. L-1; the
others are dropped from the hidden states, rotary embeddings, masks and the KV
cache of those layers. The first K layers keep the whole prompt in their cache.

How it is done without changing the model: a probe
(:func:`~clusterlens.models.vlm.pruners._attention.attention_probe`) reads the last
row of layer K-1's attention while the fast kernel computes the layer's output, and
forward pre-hooks on layers K.. cut the pruned rows from their inputs. Decoding then
runs through the same hooks (they cut the pruned key columns from any explicit mask).

Families: Qwen2-VL, Qwen2.5-VL, LLaVA, LLaVA-NeXT, and Qwen3-VL when K is at least
its number of DeepStack layers (DeepStack adds vision features to the image rows of
the first layers' outputs, so those rows must still be there). Prefill FLOPs count K
layers on the full prompt and the rest on the pruned one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import torch

from clusterlens.models.vlm._base import PruningAdapter
from clusterlens.models.vlm.pruners._attention import AttentionRecord, attention_probe
from clusterlens.models.vlm.pruners._common import (
    PrunedAnswer,
    PruningInputs,
    PruningPlan,
    TokenPruner,
    checked_budget,
    split_flops,
    top_scores,
)

DEFAULT_LAYER = 2


class FastV(TokenPruner):
    """Rank image tokens by the attention they get at layer K, prune them after it.

    Args:
        layer: K, the number of layers that see every token (>= 1). None: the
            paper's 2, or one layer fewer than the model has when it has at most 2
            (the tiny test models), so every model prunes somewhere.

    Example:
        >>> FastV(layer=3).layer
        3
    """

    name = "fastv"
    families = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next")
    query_aware = True

    def __init__(self, layer: int | None = None) -> None:
        if layer is not None and layer < 1:
            raise ValueError(f"FastV's layer K must be at least 1, got {layer}")
        self.requested_layer = layer
        self.layer = DEFAULT_LAYER if layer is None else layer

    def check_family(self, adapter: PruningAdapter) -> None:
        super().check_family(adapter)
        layers = int(adapter.text_config.num_hidden_layers)
        if self.requested_layer is None:
            self.layer = max(1, min(DEFAULT_LAYER, layers - 1))
        if self.layer >= layers:
            raise ValueError(
                f"FastV's layer K={self.layer} must be below the model's {layers} decoder layers"
            )
        deepstack = len(getattr(adapter.model.config.vision_config, "deepstack_visual_indexes", []))
        if self.layer < deepstack:
            raise ValueError(
                f"this Qwen3-VL adds DeepStack features after its first {deepstack} layers; "
                f"FastV needs K >= {deepstack} (got K={self.layer})"
            )

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        """The kept set alone (runs the first K layers of the full prompt)."""
        self.check_family(inputs.adapter)
        prompt = inputs.adapter.prepare(inputs.batch, features=inputs.features)
        with self.pruning(inputs.adapter, inputs.batch, budget) as state:
            inputs.adapter.prefill(prompt, last_only=True)
        return PruningPlan(keep=state.image_keep)

    @torch.inference_mode()
    def answer(
        self,
        inputs: PruningInputs,
        budget: int,
        max_new_tokens: int = 16,
        stop_token_ids: list[int] | None = None,
    ) -> PrunedAnswer:
        """Greedy answer with pruning inside the prefill; ``select_s`` is the ranking alone."""
        self.check_family(inputs.adapter)
        adapter = inputs.adapter
        prompt = adapter.prepare(inputs.batch, features=inputs.features)
        with self.pruning(adapter, inputs.batch, budget) as state:
            answer = adapter.generate(prompt, max_new_tokens, stop_token_ids)
        kept = prompt.tokens_full - int((~state.image_keep).sum())
        return PrunedAnswer(
            token_ids=answer.token_ids,
            image_tokens_kept=int(state.image_keep.sum()),
            image_tokens_full=prompt.image_tokens_full,
            tokens_kept=kept,
            tokens_full=prompt.tokens_full,
            flops_kept=split_flops(prompt.tokens_full, kept, self.layer, adapter),
            flops_full=answer.flops_full,
            select_s=state.select_s,
            prefill_s=answer.prefill_s,
            generate_s=answer.total_s,
            # the probe is the first K layers on the full prompt, already in flops_kept
            select_flops=0,
        )

    @contextmanager
    def pruning(
        self, adapter: PruningAdapter, batch: dict[str, Any], budget: int
    ) -> Iterator[_FastVState]:
        """While open, the language model prunes the batch's image tokens after layer K.

        The prompt run inside must be the batch's unpruned prompt
        (``adapter.prepare(batch)``); the state's ``image_keep`` holds the decision
        once the prefill has passed layer K.
        """
        layers = adapter.language_model.layers
        is_image = batch["input_ids"][0].cpu() == adapter.image_token_id
        state = _FastVState(checked_budget(budget, int(is_image.sum())), is_image)
        with ExitStack() as stack:
            state.record = stack.enter_context(
                attention_probe(layers[self.layer - 1].self_attn, "last", min_queries=2)
            )
            for layer in layers[self.layer :]:
                handle = layer.register_forward_pre_hook(state.cut_inputs, with_kwargs=True)
                stack.callback(handle.remove)
            yield state


class _FastVState:
    """The keep decision, made once at layer K, and the hooks that apply it."""

    def __init__(self, budget: int, is_image: torch.Tensor) -> None:
        self.budget = budget
        self.is_image = is_image  # (L,) bool over the prompt
        self.record: AttentionRecord | None = None
        self.sequence_keep: torch.Tensor | None = None
        self.image_keep = torch.ones(int(is_image.sum()), dtype=torch.bool)
        self.select_s = 0.0

    def decide(self) -> torch.Tensor:
        """(L,) bool: text tokens and the ``budget`` image tokens most attended by the last."""
        started = time.perf_counter()
        if self.record is None or not self.record.calls:
            raise RuntimeError("FastV's probe saw no prefill at layer K-1")
        last_row = self.record.calls[-1][0].cpu()  # (L,) heads averaged
        image_positions = torch.nonzero(self.is_image).squeeze(1)
        best = top_scores(last_row[image_positions], self.budget)
        self.image_keep = torch.zeros(len(image_positions), dtype=torch.bool)
        self.image_keep[best] = True
        keep = ~self.is_image
        keep[image_positions[best]] = True
        self.sequence_keep = keep
        self.select_s = time.perf_counter() - started
        return keep

    def cut_inputs(
        self, module: torch.nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[tuple[Any, ...], dict[str, Any]]:
        hidden = args[0] if args else kwargs["hidden_states"]
        full = len(self.is_image)
        if hidden.shape[1] > 1 and self.sequence_keep is None:
            self.decide()
        keep = self.sequence_keep
        if keep is None:
            return args, kwargs
        keep = keep.to(hidden.device)
        kwargs = dict(kwargs)
        if hidden.shape[1] == full:  # the first pruned layer gets the whole prompt
            hidden = hidden[:, keep]
        if args:
            args = (hidden, *args[1:])
        else:
            kwargs["hidden_states"] = hidden
        if kwargs.get("position_embeddings") is not None:
            kwargs["position_embeddings"] = tuple(
                _cut_dim(part, keep, -2, full) for part in kwargs["position_embeddings"]
            )
        if kwargs.get("position_ids") is not None:
            kwargs["position_ids"] = _cut_dim(kwargs["position_ids"], keep, -1, full)
        mask = kwargs.get("attention_mask")
        if isinstance(mask, torch.Tensor) and mask.ndim == 4:
            mask = _cut_dim(mask, keep, -2, full)
            # decode masks cover the prompt plus the tokens generated since
            grown = torch.ones(mask.shape[-1] - full, dtype=torch.bool, device=keep.device)
            mask = mask[..., torch.cat([keep, grown])]
            kwargs["attention_mask"] = mask
        return args, kwargs


def _cut_dim(tensor: torch.Tensor, keep: torch.Tensor, dim: int, full: int) -> torch.Tensor:
    """Keep the rows of ``dim`` when it spans the whole prompt (decode steps pass through)."""
    if tensor.shape[dim] != full:
        return tensor
    return tensor.index_select(dim, torch.nonzero(keep).squeeze(1).to(tensor.device))
