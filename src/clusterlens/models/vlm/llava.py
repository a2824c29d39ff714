"""LLaVA-1.5: pruning the square patch grid of its CLIP vision tower.

LLaVA-1.5 turns a 336 px image into a 24 x 24 = 576-token grid (CLIP ViT-L/14, the
penultimate layer, CLS dropped: ``vision_feature_select_strategy="default"``; with
"full" the CLS token comes first and is always kept). Its language model (Llama /
Vicuna) uses 1D rotary positions. Kept tokens keep their original positions by
default -- the gaps left by pruned tokens keep the distances between the rest, and
the text after the image is unchanged -- or are renumbered (``positions="compact"``)
as if the pruned tokens had never been there.

LLaVA-NeXT (:class:`LlavaNextAdapter`) puts two grids in the prompt: the base image
(``side x side``, the whole image squashed to the tower's size) and the unpadded
high-resolution grid of its tiles (``rows x cols``, the image's aspect ratio) with a
newline token after every row. A keep mask is given on the high-resolution grid; the
base grid keeps the cells the mask covers at least half of, and a row's newline is
kept when any token of that row is.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from clusterlens.models.vlm._base import PrunedPrompt, PruningAdapter, VisionFeatures
from clusterlens.models.vlm._mapping import resample_mask

POSITION_MODES = ("original", "compact")


class LlavaAdapter(PruningAdapter):
    """Pruning adapter for ``LlavaForConditionalGeneration``.

    Args:
        model: the model.
        positions: "original" (kept tokens keep their positions) or "compact".
    """

    multimodal_rope = False
    model_type = "llava"

    def __init__(self, model: torch.nn.Module, positions: str = "original") -> None:
        model_type = getattr(model.config, "model_type", None)
        if model_type != self.model_type:
            raise ValueError(
                f"{type(self).__name__} takes {self.model_type!r} models, got {model_type!r}"
            )
        if positions not in POSITION_MODES:
            raise ValueError(f"positions must be one of {POSITION_MODES}, got {positions!r}")
        super().__init__(model)
        self.image_token_id = int(model.config.image_token_index)
        self.positions = positions
        self.select_strategy = model.config.vision_feature_select_strategy
        self.extra_tokens_per_image = 1 if self.select_strategy == "full" else 0
        vision = model.config.vision_config
        self.side = int(vision.image_size) // int(vision.patch_size)

    def token_grids(self, batch: dict[str, Any]) -> list[tuple[int, int]]:
        pixels = batch["pixel_values"] if "pixel_values" in batch else None
        if pixels is None or pixels.ndim != 4:
            raise ValueError(
                "the batch has no (B, 3, H, W) pixel_values; pass images to the processor"
            )
        return [(self.side, self.side)] * int(pixels.shape[0])

    def vision_features(self, batch: dict[str, Any]) -> VisionFeatures:
        grids = self.token_grids(batch)
        output = self.model.model.get_image_features(
            pixel_values=batch["pixel_values"],
            vision_feature_layer=self.model.config.vision_feature_layer,
            vision_feature_select_strategy=self.select_strategy,
            return_dict=True,
        )
        embeds = torch.cat(list(output.pooler_output), dim=0)
        return VisionFeatures(embeds, grids, extra_per_image=self.extra_tokens_per_image)

    def full_positions(self, batch: dict[str, Any]) -> torch.Tensor:
        return torch.arange(batch["input_ids"].shape[1]).unsqueeze(0)

    def prepare(
        self,
        batch: dict[str, Any],
        keep: torch.Tensor | None = None,
        pool: torch.Tensor | None = None,
        features: VisionFeatures | None = None,
    ) -> PrunedPrompt:
        prompt = super().prepare(batch, keep, pool, features)
        if self.positions == "compact":
            prompt.position_ids = torch.arange(prompt.tokens_kept).unsqueeze(0)
            prompt.next_position = prompt.tokens_kept
        return prompt


class LlavaNextAdapter(LlavaAdapter):
    """Pruning adapter for ``LlavaNextForConditionalGeneration`` (any-resolution tiles).

    :meth:`token_grids` reports the high-resolution grid of each image; keep masks and
    allocations are given on it (see the module docstring for the base grid and the
    newline tokens).
    """

    model_type = "llava_next"

    def __init__(self, model: torch.nn.Module, positions: str = "original") -> None:
        super().__init__(model, positions)
        if self.select_strategy != "default":
            raise ValueError(
                "LlavaNextAdapter needs vision_feature_select_strategy='default' (CLS dropped), "
                f"got {self.select_strategy!r}"
            )
        self.extra_tokens_per_image = 0

    def token_grids(self, batch: dict[str, Any]) -> list[tuple[int, int]]:
        from transformers.models.llava_next.modeling_llava_next import (
            get_anyres_image_grid_shape,
            unpad_image,
        )

        if "image_sizes" not in batch or "pixel_values" not in batch:
            raise ValueError("the batch has no pixel_values / image_sizes; pass images")
        grids = []
        for size in batch["image_sizes"].tolist():
            tiles_high, tiles_wide = get_anyres_image_grid_shape(
                size,
                self.model.config.image_grid_pinpoints,
                self.model.config.vision_config.image_size,
            )
            # the model's own unpadding, applied to an empty tensor of the padded grid's shape
            padded = torch.empty(0, tiles_high * self.side, tiles_wide * self.side)
            rows, cols = unpad_image(padded, size).shape[1:]
            grids.append((int(rows), int(cols)))
        return grids

    def vision_features(self, batch: dict[str, Any]) -> VisionFeatures:
        grids = self.token_grids(batch)
        output = self.model.model.get_image_features(
            pixel_values=batch["pixel_values"],
            image_sizes=batch["image_sizes"],
            vision_feature_layer=self.model.config.vision_feature_layer,
            vision_feature_select_strategy=self.select_strategy,
            return_dict=True,
        )
        return VisionFeatures(torch.cat(list(output.pooler_output), dim=0), grids)

    def pool_from_allocations(self, allocations: list[Any], batch: dict[str, Any]) -> torch.Tensor:
        raise ValueError(
            "pooling coarse patches is not supported for LLaVA-NeXT (two grids per image); "
            "keep tokens with keep_from_allocations instead"
        )

    def keep_from_grids(self, masks: list[Any], batch: dict[str, Any]) -> torch.Tensor:
        """(N,) keep vector from one high-resolution (rows, cols) mask per image."""
        grids = self.token_grids(batch)
        if len(masks) != len(grids):
            raise ValueError(f"expected one keep mask per image ({len(grids)}), got {len(masks)}")
        parts = []
        for mask, grid in zip(masks, grids, strict=True):
            high = np.asarray(mask, dtype=bool)
            if high.shape != grid:
                raise ValueError(
                    f"keep mask of shape {high.shape} does not match the image's "
                    f"token grid {grid} (the high-resolution one)"
                )
            base = resample_mask(high, self.side, self.side)
            rows_with_newline = np.concatenate([high, high.any(axis=1, keepdims=True)], axis=1)
            parts += [base.reshape(-1), rows_with_newline.reshape(-1)]
        return torch.from_numpy(np.concatenate(parts))
