"""SCLIP-style dense CLIP as a segment dense predictor.

The dense CLIP itself (correlative attention, sliding windows, prompt templates) lives
in :mod:`clusterlens.models.clip_dense`, shared with the query coupling of ``select``
(:mod:`clusterlens.relevance.open_vocab`); this module adds what MHQR needs from it: an
optional ``background`` class, probabilities at the image's size and the whole-image
patch features, as a :class:`~clusterlens.segment.dense.DenseOutput`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from clusterlens.image import ImageInput, load_image
from clusterlens.models.clip_dense import (
    TEMPLATES,
    DenseClip,
    _correlative_attention,
    _starts,
    load_clip_bundle,
)
from clusterlens.segment.dense import BACKGROUND, DenseOutput, validate_class_names

__all__ = ["TEMPLATES", "ClipDensePredictor", "load_clip_bundle"]
# re-exported for the tests of the shared implementation
_ = (_correlative_attention, _starts)


class ClipDensePredictor(DenseClip):
    """Dense CLIP (SCLIP-style) as a :class:`~clusterlens.segment.dense.DensePredictor`.

    Args:
        bundle: a :class:`clusterlens.models.clip.ClipBundle` with a ViT CLIP.
        background: add a ``background`` class.
        templates, window, stride, short_side, logit_scale: see
            :class:`clusterlens.models.clip_dense.DenseClip`.

    Raises:
        ValueError: an image-only bundle or a template without ``{}``.
    """

    def __init__(
        self,
        bundle: Any,
        templates: Sequence[str] = TEMPLATES,
        background: bool = False,
        window: int | None = None,
        stride: int | None = None,
        short_side: int | None = None,
        logit_scale: float = 40.0,
    ) -> None:
        super().__init__(bundle, templates, window, stride, short_side, logit_scale)
        self.background = background

    @torch.no_grad()
    def predict(self, image: ImageInput, class_names: Sequence[str]) -> DenseOutput:
        """Class probabilities by sliding windows, and the whole-image patch features."""
        names = validate_class_names(class_names)
        if self.background:
            names = (*names, BACKGROUND)
        rgb = load_image(image)
        windows = self.image_windows(rgb)
        probabilities = self.probabilities(windows, names)
        features = self.patch_embeddings(self.normalised(rgb))[0].permute(2, 0, 1)
        text = self.text_embeddings(names)
        return DenseOutput(
            probabilities=probabilities.cpu().numpy().astype(np.float32),
            features=features.cpu().numpy().astype(np.float32),
            class_names=names,
            class_embeddings=text.cpu().numpy().astype(np.float32),
        )
