"""Dense predictors: image + class names -> per-pixel class scores ``(K, H, W)``.

Two families share one interface (:class:`DensePredictor`, returning
:class:`DenseOutput`):

- :class:`OfflineDensePredictor` wraps the bundled CamVid U-Net
  (``offline:camvid``). Requested names are matched to its 11 classes (exact name,
  else the sentence-embedding query matcher), so ``["car", "street", "sky"]`` works;
  a name it cannot match is an error, never a silent guess.
- :class:`ClipDensePredictor` (see :mod:`clusterlens.segment.clip_dense`) runs an
  SCLIP-style dense CLIP over open_clip or transformers CLIP.

Both give class *probabilities* (softmax over the requested classes, plus an optional
``background`` class) and a dense feature map the later MHQR stages compare masks
with.

Example:
    >>> from clusterlens.segment.dense import load_dense_predictor
    >>> predictor = load_dense_predictor("offline:camvid")  # doctest: +SKIP
    >>> out = predictor.predict("street.png", ["road", "car", "sky"])  # doctest: +SKIP
    >>> out.probabilities.shape  # doctest: +SKIP
    (3, 360, 480)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from clusterlens.image import ImageInput, load_image

BACKGROUND = "background"

#: Input scales of the offline model's pyramid relative to its shipped scale (0.5 ->
#: 0.5, 0.75, 0.875), coarse to fine; chosen on 12 CamVid *train* frames (docs/segment.md).
OFFLINE_PYRAMID_FACTORS = (1.0, 1.5, 1.75)


@dataclass(frozen=True)
class DenseOutput:
    """What a dense predictor says about one image.

    Attributes:
        probabilities: (K, H, W) float32 class probabilities at the image's size
            (they sum to 1 over K at every pixel).
        features: (C, h, w) float32 dense features (any resolution) in which
            semantically similar pixels are close; MHQR's refinement and merger use them.
        class_names: the K class names, ``background`` last when it was asked for.
        class_embeddings: optional (K, D) text embeddings of the classes (dense CLIP),
            which the merger uses to tell near-synonyms apart from different classes.
        feature_pyramid: optional dense features from several input scales, coarse to
            fine (one per refinement level); the attention refinement uses them instead
            of ``features`` when present.
        probability_pyramid: optional (K, H, W) class probabilities from the same input
            scales, coarse to fine, the first being ``probabilities``; the coarse-to-fine
            refinement reads the finer ones near class boundaries.
    """

    probabilities: npt.NDArray[np.float32]
    features: npt.NDArray[np.float32]
    class_names: tuple[str, ...]
    class_embeddings: npt.NDArray[np.float32] | None = None
    feature_pyramid: tuple[npt.NDArray[np.float32], ...] | None = None
    probability_pyramid: tuple[npt.NDArray[np.float32], ...] | None = None

    @property
    def labels(self) -> npt.NDArray[np.int64]:
        """(H, W) most likely class per pixel."""
        return self.probabilities.argmax(axis=0)


class DensePredictor(Protocol):
    """Anything that turns an image and class names into a :class:`DenseOutput`."""

    name: str

    def predict(self, image: ImageInput, class_names: Sequence[str]) -> DenseOutput:
        """Class probabilities and dense features of ``image`` for ``class_names``."""
        ...


def validate_class_names(class_names: Sequence[str]) -> tuple[str, ...]:
    """Strip and check a list of class names (non-empty, unique, no empty strings).

    Raises:
        ValueError: a string instead of a list, an empty list, blanks or duplicates.
    """
    if isinstance(class_names, str):
        raise ValueError(f"class_names must be a list of names, got the string {class_names!r}")
    names = tuple(str(name).strip() for name in class_names)
    if not names or any(not name for name in names):
        raise ValueError(f"class_names must be non-empty names, got {list(class_names)!r}")
    if len(set(name.lower() for name in names)) != len(names):
        raise ValueError(f"class_names must be unique, got {list(names)!r}")
    return names


class OfflineDensePredictor:
    """The bundled CamVid U-Net as an open-vocabulary-style dense predictor.

    Each requested name is mapped to one or more of the model's classes (exact match
    ignoring case, else :meth:`CamVidSegmenter.match_query`); its probability is the
    sum over those classes, renormalised over the requested names. With
    ``background=True`` the probability left over by the requested classes becomes
    a last ``background`` class instead of being spread over them.

    The dense features are the model's own 11-class probability vector per pixel:
    its semantic embedding, at the full image size. With ``pyramid_scales`` the model
    also runs at those working scales (relative to CamVid's 480x360 frame; the shipped
    scale is 0.5) and the results form coarse-to-fine feature and probability pyramids
    for the hierarchical refinement. Larger inputs give sharper boundaries but worse
    semantics (on 12 CamVid *train* frames: scale 0.5 61.4 mIoU / 36.5 boundary F1,
    0.75 57.1 / 42.9, 1.0 51.6 / 39.7), so ``probabilities`` stay those of the first
    (coarsest) scale and the finer ones only move boundaries.

    Args:
        segmenter: a loaded :class:`~clusterlens.models.CamVidSegmenter`
            (``load_model("offline:camvid")``).
        background: add a background class.
        pyramid_scales: working scales of the pyramids, coarse to fine, the first being
            the model's shipped scale (None: no pyramid, one forward pass).

    Raises:
        ValueError: empty or non-positive scales, scales not increasing, or a first
            scale that is not the model's shipped one.
    """

    def __init__(
        self,
        segmenter: Any,
        background: bool = False,
        pyramid_scales: Sequence[float] | None = None,
    ) -> None:
        if pyramid_scales is not None:
            _check_pyramid_scales(tuple(pyramid_scales), float(segmenter.scale))
        self.segmenter = segmenter
        self.background = background
        self.pyramid_scales = None if pyramid_scales is None else tuple(pyramid_scales)
        self.name = getattr(segmenter, "name", "offline:camvid")
        # A benchmark asks for the same names on every image; free names go through the
        # sentence model (~0.14 s for the 19 Cityscapes names), so each list is matched once.
        self._mappings: dict[tuple[str, ...], list[list[int]]] = {}

    def single_scale(self) -> OfflineDensePredictor:
        """The same model and vocabulary without the pyramid (one forward pass)."""
        if self.pyramid_scales is None:
            return self
        sibling = OfflineDensePredictor(self.segmenter, self.background)
        sibling._mappings = self._mappings  # the matched names are shared
        return sibling

    def class_mapping(self, class_names: Sequence[str]) -> list[list[int]]:
        """Indices of the model classes behind each requested name (matched once per list).

        Raises:
            ValueError: a name matches none of the model's classes.
        """
        names = validate_class_names(class_names)
        if names not in self._mappings:
            self._mappings[names] = self._match(names)
        return [list(indices) for indices in self._mappings[names]]

    def _match(self, names: tuple[str, ...]) -> list[list[int]]:
        model_names = [name.lower() for name in self.segmenter.class_names]
        mapping = []
        for name in names:
            if name.lower() in model_names:
                mapping.append([model_names.index(name.lower())])
                continue
            match = self.segmenter.match_query(name)
            if not match.matched:
                best, score = max(match.scores.items(), key=lambda item: item[1])
                raise ValueError(
                    f"class {name!r} names none of {self.name}'s classes (best {best!r} at "
                    f"{score:.2f} < {match.threshold:.2f}); it knows: "
                    f"{', '.join(self.segmenter.class_names)}"
                )
            mapping.append([self.segmenter.class_names.index(c) for c in match.classes])
        return mapping

    def predict(self, image: ImageInput, class_names: Sequence[str]) -> DenseOutput:
        """Probabilities of ``class_names`` (plus background) and the model's features.

        Args:
            image: anything :func:`clusterlens.image.load_image` accepts.
            class_names: names to segment, e.g. the 11 CamVid classes or ``["car", "road"]``.
        """
        names = validate_class_names(class_names)
        mapping = self.class_mapping(names)
        rgb = load_image(image)
        model_probabilities = self.segmenter.predict_proba(rgb)
        probabilities = self._requested(model_probabilities, mapping)
        levels = self._pyramid(rgb, model_probabilities)
        return DenseOutput(
            probabilities=probabilities,
            features=model_probabilities.astype(np.float32),
            class_names=(*names, BACKGROUND) if self.background else names,
            feature_pyramid=levels,
            probability_pyramid=None
            if levels is None  # the first level is the shipped scale: already mapped
            else (probabilities, *(self._requested(level, mapping) for level in levels[1:])),
        )

    def _requested(
        self, model_probabilities: np.ndarray, mapping: list[list[int]]
    ) -> npt.NDArray[np.float32]:
        """Model-class probabilities summed into the requested names (+ background)."""
        scores = np.stack([model_probabilities[indices].sum(axis=0) for indices in mapping])
        if self.background:
            leftover = np.clip(1.0 - scores.sum(axis=0), 0.0, 1.0)
            scores = np.concatenate([scores, leftover[None]])
        probabilities = scores / np.maximum(scores.sum(axis=0, keepdims=True), 1e-8)
        return probabilities.astype(np.float32)

    def _pyramid(self, rgb: np.ndarray, base: np.ndarray) -> tuple[np.ndarray, ...] | None:
        if self.pyramid_scales is None:
            return None
        import torch

        from clusterlens.models.offline._inference import predict_logits

        levels = [base.astype(np.float32)]  # the first scale is the shipped one
        for scale in self.pyramid_scales[1:]:
            logits = predict_logits(
                self.segmenter.network, rgb, scale, self.segmenter.flip, self.segmenter.stride
            )
            levels.append(torch.softmax(logits, dim=0).numpy().astype(np.float32))
        return tuple(levels)


def _check_pyramid_scales(scales: tuple[float, ...], shipped: float) -> None:
    """Scales must rise from the model's shipped scale (the semantic level) upwards."""
    if not scales or min(scales) <= 0:
        raise ValueError(f"pyramid_scales must be positive numbers, got {scales!r}")
    if any(finer <= coarser for coarser, finer in zip(scales, scales[1:], strict=False)):
        raise ValueError(f"pyramid_scales must increase (coarse to fine), got {scales!r}")
    if not math.isclose(scales[0], shipped):
        raise ValueError(
            f"pyramid_scales must start at the model's shipped scale {shipped} (its "
            f"probabilities are the coarse level), got {scales!r}"
        )


def load_dense_predictor(
    name: str = "offline:camvid", background: bool = False, device: str = "cpu", **options: Any
) -> DensePredictor:
    """A dense predictor from a model name of the registry.

    Args:
        name: ``offline:camvid`` (or ``offline:/path.pt``) for the bundled U-Net;
            ``open_clip:<spec>`` or ``hf:<spec>`` for dense CLIP (``open_clip:tiny`` and
            ``hf:tiny-clip`` are tiny random models for tests).
        background: add a ``background`` class.
        device: torch device.
        **options: passed to :class:`OfflineDensePredictor` (``pyramid_scales``; by
            default the shipped scale times :data:`OFFLINE_PYRAMID_FACTORS`, ``None`` for
            a single forward pass) or
            :class:`~clusterlens.segment.clip_dense.ClipDensePredictor` (``templates``,
            ``window``, ``stride`` ...).

    Raises:
        ValueError: a name of no supported source.
        ModelNotFoundError: the weights are not on disk.
    """
    source = name.split(":", 1)[0]
    if source == "offline":
        from clusterlens.models import load_model

        segmenter = load_model(name, device=device)
        options.setdefault(
            "pyramid_scales", tuple(segmenter.scale * f for f in OFFLINE_PYRAMID_FACTORS)
        )
        return OfflineDensePredictor(segmenter, background=background, **options)
    if source in {"open_clip", "hf"}:
        from clusterlens.segment.clip_dense import ClipDensePredictor, load_clip_bundle

        bundle = load_clip_bundle(name, device=device)
        return ClipDensePredictor(bundle, background=background, **options)
    raise ValueError(
        f"unknown dense model {name!r}; accepted: offline:camvid, open_clip:<spec>, hf:<spec>"
    )
