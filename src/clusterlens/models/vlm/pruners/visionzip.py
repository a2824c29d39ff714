"""VisionZip: dominant tokens by the vision tower's attention, plus merged context.

Yang et al., "VisionZip: Longer is Better but Not Necessary in Vision Language
Models", 2024, arXiv:2412.04467.

Query-free. The budget is split into *dominant* and *contextual* tokens (54 : 10 of
64 in the paper for LLaVA-1.5; the same ratio here, at least one of each):

- dominant: the image tokens that receive the most attention in the vision tower's
  layer whose output the language model reads. For CLIP towers (LLaVA) that is the
  CLS token's attention to each patch, heads averaged, as in the paper. **Qwen
  vision towers have no CLS token**; for them we use the mean attention each token
  receives from all tokens of its image, heads averaged, in the last full-attention
  block, averaged over the patches a merged token covers. This is our adaptation.
- contextual: the remaining tokens are grouped around evenly spaced "target" tokens
  (each joins the target it is most similar to, by cosine of the features) and each
  group becomes one token, the mean of its members, at its target's position.

Deviation from the paper: the merge averages the *projected* features (what the
language model receives) rather than the vision tower's hidden states before the
projector, and the similarity is the cosine of those features rather than the
attention keys. Merged tokens reuse clusterlens's pooling (:meth:`prepare` with
``pool``), so the LLM sees one token per group at its target's position.

Families: LLaVA (CLS attention), Qwen2-VL, Qwen2.5-VL (window order undone),
Qwen3-VL (mean attention received). Not LLaVA-NeXT: its tiles each have a CLS and
its prompt mixes a base grid, unpadded tiles and newline tokens.
"""

from __future__ import annotations

from typing import Any

import torch

from clusterlens.models.vlm._base import PruningAdapter, VisionFeatures
from clusterlens.models.vlm.pruners._attention import attention_probe
from clusterlens.models.vlm.pruners._common import (
    PruningInputs,
    PruningPlan,
    TokenPruner,
    checked_budget,
    top_scores,
)

#: the paper's split for LLaVA-1.5 at 64 tokens: 54 dominant + 10 contextual
CONTEXTUAL_SHARE = 10 / 64
QWEN_TYPES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")


def vision_features_with_attention(
    adapter: PruningAdapter, batch: dict[str, Any]
) -> tuple[VisionFeatures, torch.Tensor]:
    """The vision features and (N,) the attention score of each image token, in one pass.

    Raises:
        ValueError: the family has no VisionZip score (LLaVA-NeXT, unknown types).
    """
    model_type = str(adapter.model.config.model_type)
    if model_type == "llava":
        return _clip_cls_attention(adapter, batch)
    if model_type in QWEN_TYPES:
        return _qwen_received_attention(adapter, batch)
    raise ValueError(
        f"VisionZip supports llava, {', '.join(QWEN_TYPES)} models, not {model_type!r}"
    )


def _clip_cls_attention(
    adapter: PruningAdapter, batch: dict[str, Any]
) -> tuple[VisionFeatures, torch.Tensor]:
    feature_layer = adapter.model.config.vision_feature_layer
    if not isinstance(feature_layer, int):
        raise ValueError(
            f"VisionZip needs one vision feature layer, this LLaVA reads {feature_layer}"
        )
    tower = adapter.model.model.vision_tower
    # CLIPVisionModel nests its encoder in vision_model in older transformers
    layers = getattr(tower, "vision_model", tower).encoder.layers
    # hidden state h is the output of encoder layer h - 1 (hidden state 0: the embeddings)
    hidden_index = feature_layer % (len(layers) + 1)
    if hidden_index == 0:
        raise ValueError("VisionZip needs a vision feature layer after the embeddings")
    with attention_probe(layers[hidden_index - 1].self_attn, "first") as record:
        features = adapter.vision_features(batch)
    cls_row = record.calls[-1]  # (images, 1 + patches)
    scores = cls_row[:, 1:]
    if adapter.extra_tokens_per_image:  # "full": CLS is an image token, always kept
        scores = torch.cat([torch.full_like(scores[:, :1], float("inf")), scores], dim=1)
    return features, scores.reshape(-1).cpu()


def _qwen_received_attention(
    adapter: PruningAdapter, batch: dict[str, Any]
) -> tuple[VisionFeatures, torch.Tensor]:
    visual = adapter.model.model.visual
    full_blocks = getattr(visual, "fullatt_block_indexes", None) or [len(visual.blocks) - 1]
    with attention_probe(visual.blocks[full_blocks[-1]].attn, "mean") as record:
        features = adapter.vision_features(batch)
    # one call per image (full attention runs image by image); patches in tower order
    patch_scores = torch.cat([call[0] for call in record.calls]).cpu()
    unit = int(visual.spatial_merge_size) ** 2
    token_scores = patch_scores.reshape(-1, unit).mean(dim=1)
    if str(adapter.model.config.model_type) == "qwen2_5_vl":
        # Qwen2.5-VL permutes merged groups into windows before its blocks and undoes
        # it after the merger: put the scores back into the features' order
        order = _window_index(visual, torch.as_tensor(batch["image_grid_thw"])).cpu()
        restored = torch.empty_like(token_scores)
        restored[order] = token_scores
        token_scores = restored
    return features, token_scores


def _window_index(visual: torch.nn.Module, grid_thw: torch.Tensor) -> torch.Tensor:
    if hasattr(visual, "get_window_index"):  # older transformers
        return visual.get_window_index(grid_thw)[0]
    from transformers.vision_utils import get_vision_window_index

    window_index, _ = get_vision_window_index(
        grid_thw,
        spatial_merge_size=visual.spatial_merge_size,
        window_size=visual.window_size,
        patch_size=visual.patch_size,
    )
    return window_index


def split_budget(budget: int) -> tuple[int, int]:
    """(dominant, contextual) shares of ``budget`` (paper ratio, at least one dominant).

    Example:
        >>> split_budget(64), split_budget(192), split_budget(1)
        ((54, 10), (162, 30), (1, 0))
    """
    contextual = round(budget * CONTEXTUAL_SHARE)
    contextual = min(max(contextual, 1), budget - 1)
    return budget - contextual, contextual


def zip_tokens(features: torch.Tensor, scores: torch.Tensor, budget: int) -> torch.Tensor:
    """(N,) pool vector: dominant tokens and targets stand for themselves (``pool[i] == i``),
    every other token points at the target it merges into.

    Example:
        >>> feats = torch.eye(4)
        >>> zip_tokens(feats, torch.tensor([0.9, 0.1, 0.5, 0.2]), 2).tolist()
        [0, 1, 1, 1]
    """
    count = features.shape[0]
    budget = checked_budget(budget, count)
    if budget == count:
        return torch.arange(count)
    dominant_count, contextual_count = split_budget(budget)
    dominant = top_scores(scores, dominant_count)
    is_dominant = torch.zeros(count, dtype=torch.bool)
    is_dominant[dominant] = True
    rest = torch.nonzero(~is_dominant).squeeze(1)
    pool = torch.arange(count)
    if contextual_count == 0:
        pool[rest] = -1
        return pool
    # evenly spaced targets among the rest, as the paper does
    step = max(1, len(rest) // contextual_count)
    targets = rest[::step][:contextual_count]
    unit = torch.nn.functional.normalize(features.float().cpu(), dim=-1)
    nearest = (unit[rest] @ unit[targets].T).argmax(dim=1)
    pool[rest] = targets[nearest]
    pool[targets] = targets
    return pool


class VisionZip(TokenPruner):
    """Dominant tokens by vision attention plus merged contextual tokens (query-free).

    Example:
        >>> VisionZip().families
        ('llava', 'qwen2_vl', 'qwen2_5_vl', 'qwen3_vl')
    """

    name = "visionzip"
    families = ("llava", *QWEN_TYPES)

    def plan(self, inputs: PruningInputs, budget: int) -> PruningPlan:
        self.check_family(inputs.adapter)
        scores = inputs.vision_attention
        if scores is None:  # not recorded with the features: one more vision pass
            _, scores = vision_features_with_attention(inputs.adapter, inputs.batch)
        if scores.shape != (inputs.image_tokens,):
            raise ValueError(
                f"vision attention has shape {tuple(scores.shape)}, expected "
                f"({inputs.image_tokens},): one score per image token"
            )
        return PruningPlan(pool=zip_tokens(inputs.features.embeds, scores, budget))
