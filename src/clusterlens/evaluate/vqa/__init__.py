"""VQA-style evaluation: answer metrics and readers for the benchmarks' local layouts.

- :mod:`~clusterlens.evaluate.vqa.metrics`: VQA soft accuracy, exact match, ANLS.
- :mod:`~clusterlens.evaluate.vqa.readers`: JSONL, VQAv2, TextVQA, GQA, POPE, DocVQA.

The accuracy-versus-tokens harness that uses them is :mod:`clusterlens.vlm_eval`.

Example:
    >>> from clusterlens.evaluate.vqa import vqa_accuracy
    >>> vqa_accuracy("Yes", ["yes"] * 3 + ["no"] * 7)
    0.9
"""

from __future__ import annotations

from clusterlens.evaluate.vqa.metrics import (
    METRICS,
    anls,
    exact_match,
    normalize_answer,
    score,
    vqa_accuracy,
)
from clusterlens.evaluate.vqa.readers import LAYOUTS, VQAItem, detect_layout, read_questions

__all__ = [
    "LAYOUTS",
    "METRICS",
    "VQAItem",
    "anls",
    "detect_layout",
    "exact_match",
    "normalize_answer",
    "read_questions",
    "score",
    "vqa_accuracy",
]
