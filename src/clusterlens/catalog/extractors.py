"""Extractors per model family, chosen from the model name.

- YOLO (``yolo:...``): features, predictions, losses, metrics and an embedding
  (:class:`~clusterlens.catalog.yolo_extract.YoloExtractor`).
- CLIP / SigLIP / DINOv2 (``open_clip:...``, ``hf:...``): the embedding only -- the
  seed's model isolation: no features, predictions, losses or distances for them.

Every extractor has ``kind``, ``settings()`` and
``extract(images, labels, image_ids) -> list[ImageRecord]``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from clusterlens.catalog.dataset import LabelSet
from clusterlens.catalog.store import ImageRecord
from clusterlens.models import load_model
from clusterlens.models.clip import ClipBundle

EMBEDDING_SOURCES = ("open_clip", "hf")


class EmbeddingExtractor:
    """Image embeddings from a :class:`~clusterlens.models.clip.ClipBundle`."""

    kind = "embedding"

    def __init__(self, bundle: ClipBundle) -> None:
        self.bundle = bundle

    def settings(self) -> dict[str, Any]:
        return {"image_size": self.bundle.image_size, "family": self.bundle.family}

    def extract(
        self,
        images: Sequence[np.ndarray],
        labels: Sequence[LabelSet | None],
        image_ids: Sequence[int],
    ) -> list[ImageRecord]:
        vectors = self.bundle.encode_images(list(images)).cpu().numpy().astype(np.float32)
        return [ImageRecord(int(i), vector) for i, vector in zip(image_ids, vectors, strict=True)]


def check_model_name(model: str) -> str:
    """The source prefix of ``model`` if the catalog can extract with it, else ValueError."""
    source = model.split(":", 1)[0] if isinstance(model, str) and ":" in model else ""
    if source != "yolo" and source not in EMBEDDING_SOURCES:
        raise ValueError(
            f"the catalog extracts with yolo:, open_clip: or hf: models, got {model!r} "
            "(e.g. yolo:yolov8n-seg.yaml, open_clip:ViT-B-16/laion2b_s34b_b88k, hf:tiny-dinov2)"
        )
    return source


def check_device(device: str) -> str:
    """``device`` if torch can run on it here, else a ValueError saying what is available.

    Checked before any model is loaded or the store is opened, so ``--device cuda`` on
    a machine without a GPU is a one-line error, not a traceback from deep in torch.
    """
    import torch

    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(
            f"--device must be a torch device such as cpu or cuda:0, got {device!r}"
        ) from err
    if parsed.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ValueError(f"--device {device}: no CUDA GPU is available here; use --device cpu")
        if parsed.index is not None and parsed.index >= count:
            raise ValueError(
                f"--device {device}: this machine has {count} CUDA GPU(s), "
                f"cuda:0 to cuda:{count - 1}"
            )
    elif parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {device}: MPS is not available here; use --device cpu")
    elif parsed.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device must be cpu, cuda[:N] or mps, got {device!r}")
    return device


def make_extractor(model: str, device: str = "cpu", **settings: Any) -> Any:
    """The extractor for ``model`` (``yolo:``, ``open_clip:`` or ``hf:``).

    Args:
        model: a registry name, e.g. ``yolo:yolov8n-seg.yaml`` or ``open_clip:tiny``.
        device: torch device.
        **settings: YOLO options (``imgsz``, ``conf``, ``iou``, ``max_det``); ignored
            by embedding models.

    Raises:
        ValueError: a source the catalog does not extract from.
    """
    if check_model_name(model) == "yolo":
        from clusterlens.catalog.yolo_extract import YoloExtractor

        return YoloExtractor(load_model(model, device=device), **settings)
    return EmbeddingExtractor(load_model(model, device=device))
