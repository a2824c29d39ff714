"""A rule-based query parser: objects, negations, spatial regions, whole-scene intent.

``select`` used to hand the whole query to the model's matcher, so "cars and
pedestrians" became one phrase and "the car on the left" ignored "left". The parser
splits a query into typed parts first; the model then matches each object phrase.

Grammar (case-insensitive; punctuation ``?!.`` ignored)::

    query     := scene | [objects] [near objects] [negation] with regions anywhere
    scene     := ["describe" | "caption" | "summarise" | "what is happening" |
                  "what is going on" | "what do you see" | "what is this" ...]
                 followed by nothing, or by "the image / scene / picture / everything"
    objects   := phrase {("," | "and" | "or" | "&" | "plus" | "as well as") phrase}
    near      := "near" ["to"] | "next to" | "close to" | "beside"
    negation  := ("except" ["for"] | "but not" | "excluding" | "other than" |
                  "apart from" | "without" | "not") objects
                 | ("everything" | "all") "but" objects
    region    := [on|in|at|to the] (top|upper|bottom|lower)[-](left|right) [corner]
               | [on|in|at|to the] (left|right|top|upper|bottom|lower) [half|side|part]
               | [in|at the] (centre|center|middle) ["of the image"]

Leading request words ("find", "show me", "where are", "highlight" ...) and articles
are dropped from each phrase. "everything" / "anything" / "all" as the positive part
means the whole image (so "everything except the road" keeps all but the road). A
vertical and a horizontal half named apart ("at the top, on the left") make a corner.

"near the X" (also "next to", "close to", "beside") names a reference object: the
objects are looked for around it (``near``), and alone it is a region around X. What
it cannot know: "salt and pepper" is split into two objects.

Example:
    >>> parse_query("the cars on the left, except trucks").to_json()["objects"]
    ['cars']
    >>> parse_query("the cars on the left, except trucks").regions
    ('left',)
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

#: Every region name a parse can hold.
REGIONS = (
    "left",
    "right",
    "top",
    "bottom",
    "top-left",
    "top-right",
    "bottom-left",
    "bottom-right",
    "centre",
)

_VERTICAL = {"top": "top", "upper": "top", "bottom": "bottom", "lower": "bottom"}
_PREFIX = r"(?:\b(?:on|in|at|to|towards|from|of)\s+)?(?:the\s+|this\s+)?(?:very\s+|far\s+)?"
_SUFFIX = (
    r"(?:\s*(?:corners?|half|halves|sides?|parts?|regions?|areas?|edges?|quadrants?|portions?)\b)?"
    r"(?:\s+(?:of|in)\s+(?:the|this)\s+(?:image|picture|photo|frame|scene|view))?"
)
_CORNER = re.compile(
    _PREFIX + r"\b(top|upper|bottom|lower)[\s-]*(left|right)\b" + _SUFFIX
    + r"|" + _PREFIX + r"\b(left|right)[\s-]+(top|upper|bottom|lower)\b" + _SUFFIX
)  # fmt: skip
_HALF = re.compile(_PREFIX + r"\b(left|right|top|upper|bottom|lower)\b" + _SUFFIX)
_CENTRE = re.compile(_PREFIX + r"\b(centre|center|middle|central)\b" + _SUFFIX)

_SCENE_VERB = re.compile(
    r"^(?:please\s+|can you\s+|could you\s+)?(?:describe|caption|summari[sz]e|"
    r"what(?:'s| is| are) (?:happening|going on|shown|in|this|there)|what do you see|"
    r"what can you see|tell me about|give (?:me )?(?:a |an )?(?:description|summary|caption)"
    r"(?: of)?)\b\s*"
)
_SCENE_WORDS = re.compile(
    r"^(?:(?:the|this|a)\s+)?(?:whole\s+|entire\s+)?"
    r"(?:image|picture|photo|scene|frame|view|everything|it|here)?\s*"
    r"(?:(?:in|of|on)\s+(?:the|this)\s+(?:image|picture|photo|scene|frame))?$"
)
_NEGATION = re.compile(
    r"\s*,?\s*\b(?:except(?:\s+for)?|but\s+not|excluding|exclude|other\s+than|apart\s+from|"
    r"without|not)\b\s*"
)
_NEAR = re.compile(r"\s*\b(?:near(?:\s+to)?|next\s+to|close\s+to|beside)\b\s*")
_ALL_BUT = re.compile(r"^(?:everything|anything|all)\s+but\b\s*")
_SPLIT = re.compile(r"\s*(?:,|;|&|\band/or\b|\band\b|\bor\b|\bplus\b|\bas well as\b)\s*")
_REQUEST = re.compile(
    r"^(?:please\s+|can you\s+|could you\s+)?(?:find|show(?: me)?|highlight|locate|select|"
    r"keep|focus on|look (?:for|at)|where(?:'s| is| are)|is there|are there|how many|count|"
    r"what(?:'s| is| are)|which|give me|i want|i need|mark|segment|detect)\b\s*"
)
_ARTICLE = re.compile(
    r"^(?:(?:the|a|an|some|any|all|all of the|every|each)\s+|"
    r"(?:an?\s+)?(?:photo|picture|image|pixels?|regions?|parts?)\s+of\s+)+"
)
_TRAILING = re.compile(
    r"\s*(?:\b(?:in|on|of)\s+(?:the|this)\s+(?:image|picture|photo|frame|scene|view)|"
    r"\bplease|\bvisible|\bhere|\bthere)$"
)
_EVERYTHING = {"everything", "anything", "all", "whole image", "entire image", "image"}


@dataclass(frozen=True)
class QueryParse:
    """What a query asks for, part by part.

    Attributes:
        text: the query as given.
        objects: object phrases to find, combined by union (empty: none named).
        negations: object phrases to leave out.
        regions: named image regions (:data:`REGIONS`), combined by union.
        scene: the query asks about the whole scene ("describe the image").
        near: reference object phrases the objects should be near ("cars near the road").
    """

    text: str
    objects: tuple[str, ...] = ()
    negations: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    scene: bool = False
    near: tuple[str, ...] = ()

    @property
    def intent(self) -> str:
        """``none`` (empty), ``scene``, ``objects``, ``except`` (all but the negations),
        or ``region`` (a region alone, or the surroundings of a ``near`` object)."""
        if self.objects:
            return "objects"
        if self.negations:
            return "except"
        if self.regions or self.near:
            return "region"
        return "scene" if self.scene else "none"

    def to_json(self) -> dict[str, Any]:
        return {
            "intent": self.intent,
            "objects": list(self.objects),
            "negations": list(self.negations),
            "regions": list(self.regions),
            "scene": self.scene,
            "near": list(self.near),
        }


def parse_query(text: str | None) -> QueryParse:
    """Split ``text`` into objects, negations, regions and whole-scene intent.

    Raises:
        ValueError: ``text`` is neither a string nor None.
    """
    if text is not None and not isinstance(text, str):
        raise ValueError(f"query must be a string or None, got {type(text).__name__}")
    words = _normalise(text or "")
    if not words:
        return QueryParse(text or "")
    words, regions = _take_regions(words)
    words, scene = _take_scene_verb(words)
    positive, negative = _split_negation(words)
    positive, near = _split_near(positive)
    objects = _phrases(positive)
    everything = any(phrase in _EVERYTHING for phrase in objects)
    objects = tuple(phrase for phrase in objects if phrase not in _EVERYTHING)
    negations = tuple(phrase for phrase in _phrases(negative) if phrase not in _EVERYTHING)
    scene_only = scene and _SCENE_WORDS.match(_ARTICLE.sub("", positive.strip())) is not None
    if (scene_only or (everything and not objects)) and not negations:
        return QueryParse(text or "", regions=regions, scene=not near, near=near)
    return QueryParse(text or "", objects, negations, regions, False, near)


def _normalise(text: str) -> str:
    text = text.lower().replace("’", "'")
    text = re.sub(r"[?!.\"]+", " ", text)
    return " ".join(text.split())


def _take_regions(words: str) -> tuple[str, tuple[str, ...]]:
    """The text without its region phrases, and the regions they name."""
    found: list[str] = []

    def corner(match: re.Match) -> str:
        vertical = match.group(1) or match.group(4)
        horizontal = match.group(2) or match.group(3)
        found.append(f"{_VERTICAL[vertical]}-{horizontal}")
        return " "

    def half(match: re.Match) -> str:
        found.append(_VERTICAL.get(match.group(1), match.group(1)))
        return " "

    def centre(match: re.Match) -> str:
        found.append("centre")
        return " "

    words = _CORNER.sub(corner, words)
    words = _HALF.sub(half, words)
    words = _CENTRE.sub(centre, words)
    regions = tuple(dict.fromkeys(found))
    vertical = [r for r in regions if r in ("top", "bottom")]
    horizontal = [r for r in regions if r in ("left", "right")]
    if len(vertical) == 1 and len(horizontal) == 1:  # "at the top, on the left"
        corner_name = f"{vertical[0]}-{horizontal[0]}"
        regions = tuple(
            dict.fromkeys(corner_name if r in vertical + horizontal else r for r in regions)
        )
    return " ".join(words.split()), regions


def _take_scene_verb(words: str) -> tuple[str, bool]:
    match = _SCENE_VERB.match(words)
    return (words[match.end() :], True) if match else (words, False)


def _split_negation(words: str) -> tuple[str, str]:
    """(positive part, negated part)."""
    all_but = _ALL_BUT.match(words)
    if all_but:
        return "everything", words[all_but.end() :]
    match = _NEGATION.search(words)
    if not match:
        return words, ""
    return words[: match.start()], words[match.end() :]


def _split_near(positive: str) -> tuple[str, tuple[str, ...]]:
    """(the objects' part, the reference phrases after "near")."""
    match = _NEAR.search(positive)
    if not match:
        return positive, ()
    near = tuple(p for p in _phrases(positive[match.end() :]) if p not in _EVERYTHING)
    return positive[: match.start()], near


def _phrases(part: str) -> tuple[str, ...]:
    """The object phrases of one part, request words and articles dropped, in order."""
    phrases = []
    for raw in _SPLIT.split(part):
        phrase = _REQUEST.sub("", raw.strip())
        phrase = _ARTICLE.sub("", phrase)
        phrase = _TRAILING.sub("", phrase).strip(" ,;-")
        phrase = _ARTICLE.sub("", phrase)
        if phrase:
            phrases.append(phrase)
    return tuple(dict.fromkeys(phrases))


def region_mask(regions: tuple[str, ...] | list[str], height: int, width: int) -> np.ndarray:
    """(height, width) float32 mask, 1 inside the union of ``regions``: halves, the four
    quadrants, and the centre (the middle half of each side).

    Raises:
        ValueError: an unknown region name (the message lists :data:`REGIONS`).
    """
    mask = np.zeros((height, width), np.float32)
    mid_y, mid_x = height / 2, width / 2
    ys = (np.arange(height) + 0.5)[:, None]  # pixel centres decide which side a pixel is on
    xs = (np.arange(width) + 0.5)[None, :]
    sides = {
        "left": xs < mid_x,
        "right": xs >= mid_x,
        "top": ys < mid_y,
        "bottom": ys >= mid_y,
    }
    for region in regions:
        if region not in REGIONS:
            raise ValueError(f"unknown region {region!r}; accepted: {', '.join(REGIONS)}")
        if region == "centre":
            # half-open like the halves: [H/4, 3H/4) x [W/4, 3W/4) by pixel centre
            inside = (ys >= height / 4) & (ys < 3 * height / 4)
            inside = inside & (xs >= width / 4) & (xs < 3 * width / 4)
        else:
            inside = np.ones((height, width), bool)
            for side in region.split("-"):
                inside = inside & sides[side]
        mask[np.broadcast_to(inside, (height, width))] = 1.0
    return mask
