"""Qwen2-VL, Qwen2.5-VL and Qwen3-VL: pruning on the merged-patch grid with M-RoPE kept.

These models resize the image to multiples of ``patch_size * spatial_merge_size``
pixels (28 for Qwen2/2.5-VL, 32 for Qwen3-VL); the processor reports the patch grid
as ``image_grid_thw`` = (t, h, w) and each image becomes ``h/merge * w/merge`` tokens
in row-major order. Each token's multimodal rotary position is (t, row, col) offset
by the text before it (``model.model.get_rope_index``); text after the image
continues from ``max(h, w)/merge``. Pruning keeps these positions, so a kept token
still "knows" where it sits in the image and the text after it is unchanged.

Qwen3-VL also adds DeepStack features (intermediate vision layers) to the image rows
of its first decoder layers; they are pruned with the same mask.
"""

from __future__ import annotations

from typing import Any

import torch

from clusterlens.models.vlm._base import PruningAdapter, VisionFeatures

QWEN_MODEL_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


class QwenVLAdapter(PruningAdapter):
    """Pruning adapter for ``Qwen2VLForConditionalGeneration`` and its successors.

    Example:
        >>> from clusterlens.models.vlm.tiny import tiny_qwen_vl
        >>> bundle = tiny_qwen_vl("qwen2_vl")
        >>> adapter = QwenVLAdapter(bundle.model)
        >>> batch = bundle.processor(images=[bundle.image], text=[bundle.prompt],
        ...                          return_tensors="pt")
        >>> adapter.token_grids(batch)
        [(4, 6)]
    """

    multimodal_rope = True

    def __init__(self, model: torch.nn.Module) -> None:
        model_type = getattr(model.config, "model_type", None)
        if model_type not in QWEN_MODEL_TYPES:
            raise ValueError(f"QwenVLAdapter takes {QWEN_MODEL_TYPES} models, got {model_type!r}")
        super().__init__(model)
        self.merge = int(model.config.vision_config.spatial_merge_size)

    def token_grids(self, batch: dict[str, Any]) -> list[tuple[int, int]]:
        grid_thw = _image_grid(batch)
        if bool((grid_thw[:, 0] != 1).any()):
            raise ValueError(
                f"images must have one temporal patch, got grid_thw {grid_thw.tolist()}"
            )
        return [(int(h) // self.merge, int(w) // self.merge) for _, h, w in grid_thw]

    def vision_features(self, batch: dict[str, Any]) -> VisionFeatures:
        grid_thw = _image_grid(batch)
        output = self.model.model.get_image_features(
            batch["pixel_values"], grid_thw, return_dict=True
        )
        embeds = torch.cat(output.pooler_output, dim=0)
        deepstack = getattr(output, "deepstack_features", None) or []
        layers = [torch.cat(per_image, dim=0) for per_image in deepstack]
        return VisionFeatures(embeds, self.token_grids(batch), layer_inputs=layers)

    def full_positions(self, batch: dict[str, Any]) -> torch.Tensor:
        if "mm_token_type_ids" not in batch:
            raise ValueError(
                "the batch lacks mm_token_type_ids, which M-RoPE needs; build it with the "
                "model's processor (it returns them)"
            )
        positions, _ = self.model.model.get_rope_index(
            batch["input_ids"],
            mm_token_type_ids=batch["mm_token_type_ids"],
            image_grid_thw=_image_grid(batch),
        )
        return positions

    def language_inputs(
        self, features: VisionFeatures, image_keep: torch.Tensor, kept_image_mask: torch.Tensor
    ) -> dict[str, Any]:
        if not features.layer_inputs:
            return {}
        # DeepStack adds one row per image token to the hidden states of the first
        # decoder layers; prune those rows and mark where the kept image tokens now sit.
        return {
            "visual_pos_masks": kept_image_mask,
            "deepstack_visual_embeds": [layer[image_keep] for layer in features.layer_inputs],
        }


def _image_grid(batch: dict[str, Any]) -> torch.Tensor:
    if "image_grid_thw" not in batch or "pixel_values" not in batch:
        raise ValueError(
            "the batch has no image (pixel_values and image_grid_thw); pass images to the processor"
        )
    return torch.as_tensor(batch["image_grid_thw"])
