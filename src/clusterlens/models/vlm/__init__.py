"""VLM integration: run a transformers VLM on only the image tokens an allocation keeps.

Adapters hook in at the embedding level: they embed the prompt, run the vision tower,
drop the pruned image rows and give the language model explicit positions -- the ones
the kept tokens had in the full image -- so nothing in transformers is patched.

- :class:`QwenVLAdapter`: Qwen2-VL, Qwen2.5-VL, Qwen3-VL (merged-patch grid, M-RoPE,
  DeepStack for Qwen3-VL).
- :class:`LlavaAdapter`: LLaVA-1.5 (24 x 24 CLIP grid, 1D positions).
- :class:`LlavaNextAdapter`: LLaVA-NeXT (base grid + unpadded tile grid + newlines).
- :func:`token_keep_mask`: an allocation -> the tokens of a model's grid it keeps.
- :func:`token_groups`: coarse patches (quadtree leaves) -> one pooled token each.
- :func:`load_vlm`: a local folder, a cached Hugging Face id or ``tiny:<family>``.
- :func:`prefill_flops`: the FastV prefill FLOPs estimate.
- :mod:`clusterlens.models.vlm.budgets`: variable budgets as high-resolution crops (Qwen).
- :mod:`clusterlens.models.vlm.tiny`: tiny random models with real processors (tests).

Example:
    >>> import numpy as np
    >>> from clusterlens.models.vlm import load_vlm
    >>> from clusterlens.models.vlm.tiny import sample_image
    >>> vlm = load_vlm("tiny:qwen2_vl")  # random weights: a pipeline check
    >>> prompt = "<|vision_start|> <|image_pad|> <|vision_end|> what is in the image ?"
    >>> batch = vlm.processor(images=[sample_image()], text=[prompt], return_tensors="pt")
    >>> rows, cols = vlm.adapter.token_grids(batch)[0]
    >>> left_half = np.zeros((rows, cols), bool); left_half[:, : cols // 2] = True
    >>> prompt = vlm.adapter.prepare(batch, vlm.adapter.keep_from_grids([left_half], batch))
    >>> prompt.image_tokens_kept, prompt.image_tokens_full, prompt.tokens_kept, prompt.tokens_full
    (12, 24, 20, 32)
"""

from __future__ import annotations

from clusterlens.models.vlm._base import Answer, PrunedPrompt, PruningAdapter, VisionFeatures
from clusterlens.models.vlm._mapping import (
    DEFAULT_MIN_OVERLAP,
    resample_mask,
    token_groups,
    token_keep_mask,
)
from clusterlens.models.vlm.flops import DecoderShape, prefill_flops
from clusterlens.models.vlm.llava import LlavaAdapter, LlavaNextAdapter
from clusterlens.models.vlm.loading import (
    SUPPORTED_MODEL_TYPES,
    LoadedVLM,
    adapter_for,
    hf_cache_dir,
    list_cached_vlms,
    list_vlm_specs,
    load_vlm,
)
from clusterlens.models.vlm.qwen import QwenVLAdapter

__all__ = [
    "DEFAULT_MIN_OVERLAP",
    "SUPPORTED_MODEL_TYPES",
    "Answer",
    "DecoderShape",
    "LlavaAdapter",
    "LlavaNextAdapter",
    "LoadedVLM",
    "PrunedPrompt",
    "PruningAdapter",
    "QwenVLAdapter",
    "VisionFeatures",
    "adapter_for",
    "hf_cache_dir",
    "list_cached_vlms",
    "list_vlm_specs",
    "load_vlm",
    "prefill_flops",
    "resample_mask",
    "token_groups",
    "token_keep_mask",
]
