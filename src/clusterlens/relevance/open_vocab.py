"""Open-vocabulary query coupling: any phrase against any image, with dense CLIP.

``select`` and ``ask`` need from a relevance model a ``name``, ``match_query(text)``
and ``relevance(rgb, classes) -> (H, W)`` in [0, 1]. :class:`OpenVocabRelevance` gives
them for every CLIP in the registry (``open_clip:<arch>/<tag or path>``,
``hf:<CLIP or SigLIP folder or cached id>``) through the SCLIP-style dense CLIP that
``segment`` uses too (:class:`clusterlens.models.clip_dense.DenseClip`, one
implementation).

There is no class list to match against: the query's object phrase *is* the class.
What replaces the matcher's threshold is calibration against negative prompts. Raw
patch-text cosines of CLIP sit in a narrow band (about 0.15-0.30 for every phrase), so
a softmax over the query alone says nothing and a softmax over the query's phrases
alone always finds *something*. The phrases are therefore scored together with a few
generic prompts (:data:`NEGATIVE_PROMPTS`); a pixel's relevance is the probability
mass the query's phrases win from them. Where nothing matches, the negatives win
everywhere and the maximum relevance is low, which ``select`` reports.

Example:
    >>> from clusterlens.relevance.open_vocab import relevance_model
    >>> model = relevance_model("open_clip:tiny")  # doctest: +SKIP
    >>> model.match_query("a photo of parked cars").classes  # doctest: +SKIP
    ('parked cars',)
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from clusterlens.image import ImageInput, load_image
from clusterlens.models.clip_dense import DenseClip, ImageWindows, load_clip_bundle
from clusterlens.models.text import QueryMatch

#: Generic prompts a query's phrases compete with in the softmax (see the module note).
#: Not tuned on real checkpoints (none are on this machine): a first, neutral choice.
NEGATIVE_PROMPTS = ("background", "something else", "an empty area", "a texture")
#: Registry sources whose models are CLIPs this module wraps.
CLIP_SOURCES = ("open_clip", "hf")
# Words before the object that carry no class information ("a photo of the car").
_FILLER = re.compile(
    r"^((an? |the )?(photo|picture|image|pixels?|regions?|parts?) of )?"
    r"(the |an? |some |any |all )?",
    re.I,
)


def object_phrase(text: str) -> str:
    """The class phrase of a query: lower case, single spaces, leading filler dropped."""
    words = " ".join(text.strip().lower().split()).strip(" .?!")
    return _FILLER.sub("", words + " ").strip()  # the space lets "a photo of" end a filler


class OpenVocabRelevance:
    """A dense CLIP as a query-coupling model for :func:`clusterlens.pipeline.select_patches`.

    Args:
        dense: the dense CLIP.
        name: the registry name reported in results (default: the dense CLIP's).
        negatives: prompts the query's phrases compete with; at least one.

    Raises:
        ValueError: no negative prompts, or one that is blank.
    """

    #: Open vocabulary: there is no fixed class list, every phrase is a class.
    class_names: tuple[str, ...] = ()

    def __init__(
        self,
        dense: DenseClip,
        name: str | None = None,
        negatives: Sequence[str] = NEGATIVE_PROMPTS,
    ) -> None:
        negatives = tuple(negatives)
        if not negatives or any(not prompt.strip() for prompt in negatives):
            raise ValueError(f"negatives must be non-empty prompts, got {list(negatives)!r}")
        self.dense = dense
        self.name = name or dense.name
        self.negatives = negatives
        # The image tower over the windows does not depend on the query: kept for the
        # last image, so a second query on it costs the text tower and a product only.
        self._image: tuple[np.ndarray, ImageWindows] | None = None

    def match_query(self, query: str) -> QueryMatch:
        """The query's object phrase as its one class (similarity 1: itself).

        Raises:
            ValueError: an empty query, or one that is only filler ("a photo of").
        """
        if not isinstance(query, str) or not query.strip():
            raise ValueError(f"query must be a non-empty string, got {query!r}")
        phrase = object_phrase(query)
        if not phrase:
            raise ValueError(f"query {query!r} names no object after its filler words")
        return QueryMatch(query, True, (phrase,), {phrase: 1.0}, 0.0)

    def relevance(self, image: ImageInput, classes: str | Sequence[str]) -> np.ndarray:
        """(H, W) float32 in [0, 1]: the probability that a pixel shows any of ``classes``
        rather than one of the negative prompts.

        Args:
            image: anything :func:`clusterlens.image.load_image` accepts.
            classes: object phrases, or a query string (its object phrase is used).

        Raises:
            ValueError: no phrase, or a phrase that is also a negative prompt.
        """
        phrases = self.match_query(classes).classes if isinstance(classes, str) else classes
        phrases = tuple(object_phrase(phrase) for phrase in phrases)
        if not phrases or not all(phrases):
            raise ValueError(f"relevance needs one or more object phrases, got {classes!r}")
        clash = set(phrases) & set(self.negatives)
        if clash:
            raise ValueError(f"{sorted(clash)} are negative prompts; name an object instead")
        names = tuple(dict.fromkeys(phrases)) + self.negatives
        probabilities = self.dense.probabilities(self._windows(image), names)
        relevance = probabilities[: len(names) - len(self.negatives)].sum(0)
        return relevance.clamp(0.0, 1.0).cpu().numpy().astype(np.float32)

    @torch.no_grad()
    def _windows(self, image: ImageInput) -> ImageWindows:
        if self._image is not None and self._image[0] is image:
            return self._image[1]
        windows = self.dense.image_windows(load_image(image))
        if isinstance(image, np.ndarray):  # the same array object: the same pixels
            self._image = (image, windows)
        return windows


def relevance_model(name: str, device: str = "cpu") -> Any:
    """A query-coupling model from a registry name.

    ``open_clip:<spec>`` and ``hf:<spec>`` give an :class:`OpenVocabRelevance`; any
    other name is loaded by :func:`clusterlens.models.load_model` and must have
    ``match_query`` and ``relevance`` (``offline:camvid``).

    Raises:
        ValueError: the model cannot couple a query to pixels (an image-only or detection
            model); the message names what is accepted.
        ModelNotFoundError: the weights are not on disk.
    """
    source = name.partition(":")[0]
    if source in CLIP_SOURCES:
        return OpenVocabRelevance(DenseClip(load_clip_bundle(name, device)), name=name)
    from clusterlens.models import load_model

    model = load_model(name, device=device)
    if not all(callable(getattr(model, attr, None)) for attr in ("match_query", "relevance")):
        raise ValueError(
            f"model {name!r} ({type(model).__name__}) cannot couple a query to pixels; "
            "accepted: offline:camvid, open_clip:<arch>/<tag or weights>, hf:<CLIP or SigLIP>"
        )
    return model
