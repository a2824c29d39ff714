"""What every token pruner shares: its inputs, its answer and the plan-then-generate run.

A pruner sees one prompt (:class:`PruningInputs`: the adapter, the processor batch,
the vision tower's features computed once, the question) and a budget of image
tokens. Most methods only *choose*: :meth:`TokenPruner.plan` returns ``keep`` (and,
for merging methods, ``pool``) for :meth:`PruningAdapter.prepare`, and the language
model then runs on the kept tokens exactly as for clusterlens's own allocations.
Methods that act inside the language model (FastV) override :meth:`TokenPruner.answer`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch

from clusterlens.models.vlm._base import PruningAdapter, VisionFeatures
from clusterlens.models.vlm.flops import prefill_flops


@dataclass
class PruningInputs:
    """One prompt, ready to be pruned.

    Attributes:
        adapter: the model's pruning adapter.
        batch: the processor's output for the prompt (batch size 1).
        features: ``adapter.vision_features(batch)``, computed once and shared by methods.
        question: the instruction text (query-aware methods read it).
        tokenizer: the processor's tokenizer (CDPruner embeds the question with it).
        vision_attention: (N,) attention score of each image token in the vision tower,
            when it was recorded with the features (see
            :func:`clusterlens.models.vlm.pruners.visionzip.vision_features_with_attention`).
        image: the decoded (H, W, 3) image, for strategies that look at pixels
            (clusterlens's allocations in :mod:`clusterlens.vlm_eval`).
    """

    adapter: PruningAdapter
    batch: dict[str, Any]
    features: VisionFeatures
    question: str = ""
    tokenizer: Any = None
    vision_attention: torch.Tensor | None = None
    image: Any = None

    @property
    def image_tokens(self) -> int:
        return int(self.features.embeds.shape[0])

    @property
    def family(self) -> str:
        return str(self.adapter.model.config.model_type)


@dataclass
class PrunedAnswer:
    """Generated tokens and the accounting of one pruned prompt (times in seconds)."""

    token_ids: torch.Tensor
    image_tokens_kept: int
    image_tokens_full: int
    tokens_kept: int
    tokens_full: int
    flops_kept: int
    flops_full: int
    select_s: float
    prefill_s: float
    generate_s: float
    notes: list[str] = field(default_factory=list)
    #: FLOPs the method spent choosing (None: not counted); see :class:`PruningPlan`
    select_flops: int | None = None


@dataclass
class PruningPlan:
    """What :meth:`PruningAdapter.prepare` takes: ``keep`` (N,) bool and/or ``pool`` (N,) long.

    ``selection_flops`` is what choosing cost in model FLOPs, where the method knows it
    (our allocation strategies: the relevance model's passes); None where it is not
    counted, so that a reader can tell "free" from "not measured".
    """

    keep: torch.Tensor | None = None
    pool: torch.Tensor | None = None
    selection_flops: int | None = None

    def prepare_kwargs(self) -> dict[str, torch.Tensor]:
        chosen = {"keep": self.keep, "pool": self.pool}
        return {name: value for name, value in chosen.items() if value is not None}


class TokenPruner:
    """A token pruning method. Subclasses set ``name``/``families`` and implement :meth:`plan`."""

    name: ClassVar[str] = ""
    #: model types (``config.model_type``) the method supports
    families: ClassVar[tuple[str, ...]] = ()
    #: whether the kept set depends on the question
    query_aware: ClassVar[bool] = False

    def check_family(self, adapter: PruningAdapter) -> None:
        """Raise a clear ``ValueError`` when the model's family is not supported."""
        model_type = str(adapter.model.config.model_type)
        if model_type not in self.families:
            raise ValueError(
                f"{self.name} supports {', '.join(self.families)} models, not {model_type!r}"
            )

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        """Which image tokens to keep (or pool) under ``budget``."""
        raise NotImplementedError

    @torch.inference_mode()
    def answer(
        self,
        inputs: PruningInputs,
        budget: int,
        max_new_tokens: int = 16,
        stop_token_ids: list[int] | None = None,
    ) -> PrunedAnswer:
        """Plan, prune and answer greedily; ``select_s`` times the plan alone."""
        self.check_family(inputs.adapter)
        started = time.perf_counter()
        plan = self.plan(inputs, budget)
        select_s = time.perf_counter() - started
        prompt = inputs.adapter.prepare(
            inputs.batch, features=inputs.features, **plan.prepare_kwargs()
        )
        answer = inputs.adapter.generate(prompt, max_new_tokens, stop_token_ids)
        return PrunedAnswer(
            token_ids=answer.token_ids,
            image_tokens_kept=prompt.image_tokens_kept,
            image_tokens_full=prompt.image_tokens_full,
            tokens_kept=prompt.tokens_kept,
            tokens_full=prompt.tokens_full,
            flops_kept=answer.flops_kept,
            flops_full=answer.flops_full,
            select_s=select_s,
            prefill_s=answer.prefill_s,
            generate_s=answer.total_s,
            select_flops=plan.selection_flops,
        )


class KeepAll(TokenPruner):
    """Every image token: the unpruned model, the reference every curve is read against."""

    name = "all"
    families = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next")

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        return PruningPlan(keep=torch.ones(inputs.image_tokens, dtype=torch.bool))


def checked_budget(budget: int, count: int) -> int:
    """``budget`` image tokens to keep out of ``count``, capped at ``count``.

    Raises:
        ValueError: the budget is not a positive integer.
    """
    if isinstance(budget, bool) or not isinstance(budget, int) or budget < 1:
        raise ValueError(f"budget must be a positive number of image tokens, got {budget!r}")
    return min(budget, count)


def keep_indices(indices: torch.Tensor, count: int) -> torch.Tensor:
    """(count,) bool with True at ``indices``."""
    keep = torch.zeros(count, dtype=torch.bool)
    keep[indices.cpu()] = True
    return keep


def top_scores(scores: torch.Tensor, budget: int) -> torch.Tensor:
    """Indices of the ``budget`` highest scores; ties go to the earlier token (stable)."""
    order = torch.argsort(scores.float().cpu(), descending=True, stable=True)
    return order[:budget]


def split_flops(tokens_before: int, tokens_after: int, layers_before: int, adapter: Any) -> int:
    """Prefill FLOPs when the first ``layers_before`` layers see more tokens than the rest."""
    shape = adapter.decoder_shape
    before = type(shape)(layers_before, shape.hidden, shape.ffn)
    after = type(shape)(shape.layers - layers_before, shape.hidden, shape.ffn)
    return prefill_flops(tokens_before, before) + prefill_flops(tokens_after, after)
