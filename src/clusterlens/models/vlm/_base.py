"""Token pruning at the embedding level, shared by every VLM family.

The adapter never changes the model. It does what the model's own ``forward`` does
before its language model -- embed the text, run the vision tower, put the image
features in the placeholder rows, compute positions with the model's own function --
and then drops the pruned image rows from the embeddings and the positions. The
language model then runs on the shorter sequence with explicit ``position_ids``, so
the kept tokens keep the positions they had in the full image.

A family subclass supplies three things: the vision features, the full-sequence
positions and, optionally, extra language-model inputs that follow the image rows
(Qwen3-VL's DeepStack features).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from clusterlens.models.vlm._mapping import DEFAULT_MIN_OVERLAP, token_groups, token_keep_mask
from clusterlens.models.vlm.flops import DecoderShape, prefill_flops


@dataclass
class VisionFeatures:
    """What the vision tower gives the language model, one row per image token.

    Attributes:
        embeds: (N, d) image features, all images concatenated in placeholder order.
        grids: (rows, cols) token grid of each image, row-major (rows*cols per image,
            plus ``extra_per_image`` tokens such as LLaVA's CLS that are always kept).
        layer_inputs: more (N, d) tensors aligned with ``embeds`` that the language
            model takes per image token (DeepStack), pruned alongside.
    """

    embeds: torch.Tensor
    grids: list[tuple[int, int]]
    extra_per_image: int = 0
    layer_inputs: list[torch.Tensor] = field(default_factory=list)


@dataclass
class PrunedPrompt:
    """A prompt ready for the language model, with the accounting of what was cut.

    Attributes:
        inputs_embeds: (1, n, d) kept rows of the full embedded prompt.
        position_ids: kept columns of the full positions: (3, 1, n) for M-RoPE, (1, n) else.
        sequence_keep: (L,) bool over the full prompt.
        image_keep: (N,) bool over the image tokens.
        next_position: position of the first generated token.
        language_kwargs: extra inputs of the language model's forward for the prefill.
    """

    inputs_embeds: torch.Tensor
    position_ids: torch.Tensor
    sequence_keep: torch.Tensor
    image_keep: torch.Tensor
    next_position: int
    language_kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def tokens_full(self) -> int:
        return int(self.sequence_keep.numel())

    @property
    def tokens_kept(self) -> int:
        return int(self.sequence_keep.sum())

    @property
    def image_tokens_full(self) -> int:
        return int(self.image_keep.numel())

    @property
    def image_tokens_kept(self) -> int:
        return int(self.image_keep.sum())


@dataclass
class Answer:
    """Generated tokens plus timings (seconds) and the prefill FLOPs estimate."""

    token_ids: torch.Tensor
    prefill_s: float
    total_s: float
    flops_kept: int
    flops_full: int


class PruningAdapter:
    """Run a transformers VLM on a subset of its image tokens.

    Subclasses implement :meth:`vision_features` and :meth:`full_positions`.
    Batches are single prompts (batch size 1), as produced by the model's processor.
    """

    #: positions are (3, 1, L) multimodal rotary positions (True) or (1, L) (False)
    multimodal_rope = False
    #: image tokens before each grid that are always kept (LLaVA "full": CLS)
    extra_tokens_per_image = 0

    def __init__(self, model: torch.nn.Module) -> None:
        self.model = model.eval()
        self.text_config = model.config.get_text_config()
        self.image_token_id = int(model.config.image_token_id)

    # --- family hooks -------------------------------------------------------------

    def vision_features(self, batch: dict[str, Any]) -> VisionFeatures:
        raise NotImplementedError

    def full_positions(self, batch: dict[str, Any]) -> torch.Tensor:
        """Positions of the whole unpruned prompt, as the model computes them."""
        raise NotImplementedError

    def language_inputs(
        self, features: VisionFeatures, image_keep: torch.Tensor, kept_image_mask: torch.Tensor
    ) -> dict[str, Any]:
        """Extra prefill inputs of the language model (none by default).

        Args:
            features: the vision tower's output for all image tokens.
            image_keep: (N,) bool over the image tokens.
            kept_image_mask: (1, n) bool: which rows of the pruned prompt are image tokens.
        """
        return {}

    # --- shared machinery ---------------------------------------------------------

    @property
    def language_model(self) -> torch.nn.Module:
        return self.model.model.language_model

    @property
    def decoder_shape(self) -> DecoderShape:
        return DecoderShape.from_config(self.text_config)

    def token_grids(self, batch: dict[str, Any]) -> list[tuple[int, int]]:
        """(rows, cols) of each image's token grid, without running the vision tower."""
        raise NotImplementedError

    @torch.inference_mode()
    def prepare(
        self,
        batch: dict[str, Any],
        keep: torch.Tensor | None = None,
        pool: torch.Tensor | None = None,
        features: VisionFeatures | None = None,
    ) -> PrunedPrompt:
        """Embed the prompt and drop the image tokens ``keep`` leaves out.

        Args:
            batch: the processor's output for one prompt (``input_ids`` (1, L), pixels...).
            keep: (N,) bool over the image tokens in placeholder order (None keeps all);
                see :meth:`keep_from_grids` to build it from per-image masks.
            pool: (N,) long: for each image token, the index of the kept token whose
                embedding becomes the mean of its group, or -1 (see
                :meth:`pool_from_allocations`). ``keep`` then defaults to the tokens
                that stand for a group.
            features: this batch's :meth:`vision_features`, when the caller already ran
                the vision tower (token pruners read them to choose ``keep``).
        """
        input_ids = _single_prompt(batch)
        features = self.vision_features(batch) if features is None else features
        image_rows = torch.nonzero(input_ids[0] == self.image_token_id).squeeze(1)
        if len(image_rows) != len(features.embeds):
            raise ValueError(
                f"the prompt has {len(image_rows)} image placeholder tokens but the vision "
                f"tower produced {len(features.embeds)} features; build the batch with the "
                "model's own processor"
            )
        if pool is not None:
            pool = _checked_pool(pool, len(image_rows))
            keep = pool == torch.arange(len(pool)) if keep is None else keep
            features = _pooled(features, pool)
        image_keep = self._checked_keep(keep, len(image_rows))
        embeds = self.language_model.get_input_embeddings()(input_ids)
        embeds[0, image_rows] = features.embeds.to(embeds.dtype)
        positions = self.full_positions(batch)
        sequence_keep = torch.ones(input_ids.shape[1], dtype=torch.bool)
        sequence_keep[image_rows] = image_keep
        return PrunedPrompt(
            inputs_embeds=embeds[:, sequence_keep],
            position_ids=positions[..., sequence_keep],
            sequence_keep=sequence_keep,
            image_keep=image_keep,
            next_position=int(positions.max()) + 1,
            language_kwargs=self.language_inputs(
                features, image_keep, (input_ids == self.image_token_id)[:, sequence_keep]
            ),
        )

    def keep_from_grids(self, masks: list[Any], batch: dict[str, Any]) -> torch.Tensor:
        """One (N,) keep vector from one (rows, cols) bool mask per image.

        Tokens outside the grid (LLaVA's CLS with the "full" strategy) are always kept.
        """
        grids = self.token_grids(batch)
        if len(masks) != len(grids):
            raise ValueError(f"expected one keep mask per image ({len(grids)}), got {len(masks)}")
        parts = []
        for mask, grid in zip(masks, grids, strict=True):
            tensor = torch.as_tensor(mask, dtype=torch.bool)
            if tuple(tensor.shape) != grid:
                raise ValueError(
                    f"keep mask of shape {tuple(tensor.shape)} does not match the image's "
                    f"token grid {grid}"
                )
            parts.append(torch.ones(self.extra_tokens_per_image, dtype=torch.bool))
            parts.append(tensor.reshape(-1))
        return torch.cat(parts)

    def keep_from_allocations(
        self,
        allocations: list[Any],
        batch: dict[str, Any],
        min_overlap: float = DEFAULT_MIN_OVERLAP,
    ) -> torch.Tensor:
        """One (N,) keep vector from one allocation per image (see :func:`token_keep_mask`)."""
        grids = self.token_grids(batch)
        if len(allocations) != len(grids):
            raise ValueError(
                f"expected one allocation per image ({len(grids)}), got {len(allocations)}"
            )
        masks = [
            token_keep_mask(allocation, rows, cols, min_overlap)
            for allocation, (rows, cols) in zip(allocations, grids, strict=True)
        ]
        return self.keep_from_grids(masks, batch)

    def pool_from_allocations(self, allocations: list[Any], batch: dict[str, Any]) -> torch.Tensor:
        """(N,) pooling groups: each kept patch becomes one token (see :func:`token_groups`).

        Each allocation must be made on its image's token grid. Tokens outside the grid
        (LLaVA's CLS) stand for themselves.
        """
        grids = self.token_grids(batch)
        if len(allocations) != len(grids):
            raise ValueError(
                f"expected one allocation per image ({len(grids)}), got {len(allocations)}"
            )
        parts, offset = [], 0
        for allocation, (rows, cols) in zip(allocations, grids, strict=True):
            extra = self.extra_tokens_per_image
            groups = torch.from_numpy(token_groups(allocation, rows, cols).reshape(-1))
            shifted = torch.where(groups >= 0, groups + offset + extra, groups)
            parts += [torch.arange(offset, offset + extra), shifted]
            offset += extra + rows * cols
        return torch.cat(parts)

    @torch.inference_mode()
    def prefill(
        self, prompt: PrunedPrompt, use_cache: bool = False, last_only: bool = False
    ) -> tuple[torch.Tensor, Any]:
        """Logits (1, n, vocab) of the pruned prompt, and the KV cache if asked.

        ``last_only`` computes the logits of the last position only (1, 1, vocab), as
        generation does: with a 150k vocabulary the full logits cost more than a layer.
        """
        # An explicit all-ones mask matters: without one (and without a cache),
        # transformers reads gaps in position_ids as boundaries between packed
        # sequences and stops attention across them -- exactly what pruning creates.
        output = self.language_model(
            inputs_embeds=prompt.inputs_embeds,
            attention_mask=torch.ones(
                prompt.inputs_embeds.shape[:2], dtype=torch.long, device=prompt.inputs_embeds.device
            ),
            position_ids=prompt.position_ids,
            use_cache=use_cache,
            **prompt.language_kwargs,
        )
        hidden = output.last_hidden_state[:, -1:] if last_only else output.last_hidden_state
        return self.model.lm_head(hidden), output.cache

    @torch.inference_mode()
    def generate(
        self,
        prompt: PrunedPrompt,
        max_new_tokens: int = 16,
        eos_token_id: int | list[int] | None = None,
    ) -> Answer:
        """Greedy decoding with a KV cache, positions continuing after the prompt."""
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be at least 1, got {max_new_tokens}")
        stops = set(_as_list(eos_token_id))
        started = time.perf_counter()
        logits, cache = self.prefill(prompt, use_cache=True, last_only=True)
        if logits.is_cuda:  # kernels run asynchronously: wait for them before timing
            torch.cuda.synchronize(logits.device)
        prefill_s = time.perf_counter() - started
        token = logits[:, -1].argmax(-1, keepdim=True)
        generated = [token]
        embed = self.language_model.get_input_embeddings()
        for step in range(1, max_new_tokens):
            if int(token) in stops:
                break
            output = self.language_model(
                inputs_embeds=embed(token),
                position_ids=self._decode_positions(prompt.next_position + step - 1).to(
                    token.device
                ),
                cache=cache,  # transformers >= 5.24's name (past_key_values is deprecated)
                use_cache=True,
            )
            cache = output.cache
            token = self.model.lm_head(output.last_hidden_state[:, -1]).argmax(-1, keepdim=True)
            generated.append(token)
        total_s = time.perf_counter() - started
        shape = self.decoder_shape
        return Answer(
            token_ids=torch.cat(generated, dim=1)[0],
            prefill_s=prefill_s,
            total_s=total_s,
            flops_kept=prefill_flops(prompt.tokens_kept, shape),
            flops_full=prefill_flops(prompt.tokens_full, shape),
        )

    def _decode_positions(self, position: int) -> torch.Tensor:
        single = torch.tensor([[position]], dtype=torch.long)
        return single.expand(3, 1, 1) if self.multimodal_rope else single

    @staticmethod
    def _checked_keep(keep: torch.Tensor | None, count: int) -> torch.Tensor:
        if keep is None:
            return torch.ones(count, dtype=torch.bool)
        keep = torch.as_tensor(keep)
        if keep.dtype != torch.bool or keep.shape != (count,):
            raise ValueError(
                f"keep must be a bool vector with one entry per image token ({count}), "
                f"got {keep.dtype} of shape {tuple(keep.shape)}"
            )
        return keep


def _checked_pool(pool: torch.Tensor, count: int) -> torch.Tensor:
    pool = torch.as_tensor(pool)
    if pool.dtype != torch.long or pool.shape != (count,):
        raise ValueError(
            f"pool must be a long vector with one entry per image token ({count}), "
            f"got {pool.dtype} of shape {tuple(pool.shape)}"
        )
    if bool(((pool < -1) | (pool >= count)).any()):
        raise ValueError(f"pool entries must be -1 or an image token index in [0, {count})")
    targets = pool[pool >= 0]
    if bool((pool[targets] != targets).any()):
        raise ValueError("every token a group pools into must stand for itself (pool[i] == i)")
    return pool


def _pooled(features: VisionFeatures, pool: torch.Tensor) -> VisionFeatures:
    """Features whose group representatives hold the mean of their group."""
    pool = pool.to(features.embeds.device)  # a CPU plan may meet features on a GPU
    members = torch.nonzero(pool >= 0).squeeze(1)

    targets = pool[members]
    counts = torch.bincount(targets, minlength=len(pool)).unsqueeze(1)

    def mean_into_representatives(rows: torch.Tensor) -> torch.Tensor:
        sums = torch.zeros_like(rows).index_add(0, targets, rows[members])
        return torch.where(counts > 0, sums / counts.clamp(min=1), rows)

    return VisionFeatures(
        mean_into_representatives(features.embeds),
        features.grids,
        features.extra_per_image,
        [mean_into_representatives(layer) for layer in features.layer_inputs],
    )


def _single_prompt(batch: dict[str, Any]) -> torch.Tensor:
    input_ids = batch["input_ids"] if "input_ids" in batch else None
    if input_ids is None or input_ids.ndim != 2 or input_ids.shape[0] != 1:
        shape = None if input_ids is None else tuple(input_ids.shape)
        raise ValueError(
            f"expected a processor batch with input_ids of shape (1, L) (one prompt), got {shape}"
        )
    return input_ids


def _as_list(value: int | list[int] | None) -> list[int]:
    if value is None:
        return []
    return [int(value)] if isinstance(value, int) else [int(v) for v in value]
