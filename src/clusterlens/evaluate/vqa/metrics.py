"""Answer scores of VQA benchmarks: VQA soft accuracy, exact match, ANLS.

- :func:`vqa_accuracy`: the VQAv2 / TextVQA metric. Answers are normalised as the
  official evaluation script does (lower case; punctuation removed, or replaced by a
  space, with commas between digits kept out; periods that are not decimal points
  dropped; number words zero-ten to digits; articles dropped; common contractions
  restored), then ``min(1, matches / 3)`` is averaged over the ten leave-one-out
  subsets of the human answers.
- :func:`exact_match`: normalised prediction equals a normalised answer (GQA, POPE).
- :func:`anls`: Average Normalized Levenshtein Similarity (DocVQA): ``1 - d / max len``
  against the closest answer, 0 when that distance ratio is 0.5 or more.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

METRICS = ("vqa", "exact", "anls")
ANLS_THRESHOLD = 0.5

_PUNCTUATION = list(';/[]"{}()=+\\_-><@`,?!*#%^&$') + ["'"]
_COMMA_BETWEEN_DIGITS = re.compile(r"(\d)(,)(\d)")
_PERIOD_NOT_DECIMAL = re.compile(r"(?!<=\d)(\.)(?!\d)")
_NUMBERS = {
    "none": "0",
    "zero": "0",
    "one": "1",
    "two": "2",
    "three": "3",
    "four": "4",
    "five": "5",
    "six": "6",
    "seven": "7",
    "eight": "8",
    "nine": "9",
    "ten": "10",
}
_ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "arent": "aren't",
    "cant": "can't",
    "couldnt": "couldn't",
    "didnt": "didn't",
    "doesnt": "doesn't",
    "dont": "don't",
    "hasnt": "hasn't",
    "havent": "haven't",
    "isnt": "isn't",
    "its": "it's",
    "shouldnt": "shouldn't",
    "thats": "that's",
    "theres": "there's",
    "theyre": "they're",
    "wasnt": "wasn't",
    "werent": "weren't",
    "whats": "what's",
    "wont": "won't",
    "wouldnt": "wouldn't",
    "youre": "you're",
}


def normalize_answer(text: str) -> str:
    """The VQA evaluation's answer normalisation.

    Example:
        >>> normalize_answer("  Two dogs.")
        '2 dogs'
        >>> normalize_answer("The 1,000 Yen!")
        '1000 yen'
    """
    text = text.replace("\n", " ").replace("\t", " ").strip().lower()
    text = _strip_punctuation(text)
    words = []
    for word in text.split():
        word = _NUMBERS.get(word, word)
        if word in _ARTICLES:
            continue
        words.append(_CONTRACTIONS.get(word, word))
    return " ".join(words)


def _strip_punctuation(text: str) -> str:
    for mark in _PUNCTUATION:
        # a mark next to a space (or a comma inside a number) goes; elsewhere it splits words
        if f"{mark} " in text or f" {mark}" in text or _COMMA_BETWEEN_DIGITS.search(text):
            text = text.replace(mark, "")
        else:
            text = text.replace(mark, " ")
    return _PERIOD_NOT_DECIMAL.sub("", text)


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """VQA soft accuracy of ``prediction`` against the human ``answers`` (10 in VQAv2).

    With one answer it is exact match of the normalised strings.

    Example:
        >>> vqa_accuracy("two", ["2"] * 2 + ["3"] * 8)
        0.6
        >>> vqa_accuracy("yes", ["yes"] * 10)
        1.0
    """
    _check_answers(answers)
    predicted = normalize_answer(prediction)
    truths = [normalize_answer(answer) for answer in answers]
    if len(truths) == 1:
        return float(predicted == truths[0])
    scores = []
    for left_out in range(len(truths)):
        others = truths[:left_out] + truths[left_out + 1 :]
        scores.append(min(1.0, sum(truth == predicted for truth in others) / 3.0))
    return round(sum(scores) / len(scores), 10)


def exact_match(prediction: str, answers: Sequence[str]) -> float:
    """1.0 when the normalised prediction equals one normalised answer, else 0.0.

    Example:
        >>> exact_match("Yes.", ["yes"])
        1.0
    """
    _check_answers(answers)
    predicted = normalize_answer(prediction)
    return float(any(predicted == normalize_answer(answer) for answer in answers))


def anls(prediction: str, answers: Sequence[str], threshold: float = ANLS_THRESHOLD) -> float:
    """Normalized Levenshtein similarity to the closest answer, 0 below the threshold.

    Compares lower-cased, whitespace-stripped strings, as the DocVQA evaluation does.

    Example:
        >>> anls("Jonh Smith", ["John Smith"])
        0.8
        >>> anls("abc", ["xyz"])
        0.0
    """
    _check_answers(answers)
    predicted = " ".join(prediction.lower().split())
    best = 0.0
    for answer in answers:
        truth = " ".join(answer.lower().split())
        longest = max(len(truth), len(predicted))
        distance = levenshtein(predicted, truth) / longest if longest else 0.0
        best = max(best, 1.0 - distance if distance < threshold else 0.0)
    return best


def levenshtein(first: str, second: str) -> int:
    """Edit distance (insertions, deletions, substitutions of one character)."""
    if len(first) < len(second):
        first, second = second, first
    previous = list(range(len(second) + 1))
    for row, char in enumerate(first, start=1):
        current = [row]
        for column, other in enumerate(second, start=1):
            cost = 0 if char == other else 1
            current.append(min(previous[column] + 1, current[-1] + 1, previous[column - 1] + cost))
        previous = current
    return previous[-1]


def score(metric: str, prediction: str, answers: Sequence[str]) -> float:
    """The score of ``metric`` (one of :data:`METRICS`)."""
    if metric == "vqa":
        return vqa_accuracy(prediction, answers)
    if metric == "exact":
        return exact_match(prediction, answers)
    if metric == "anls":
        return anls(prediction, answers)
    raise ValueError(f"unknown metric {metric!r}; choose from {METRICS}")


def _check_answers(answers: Sequence[str]) -> None:
    if isinstance(answers, str) or not answers:
        raise ValueError(f"answers must be a non-empty list of strings, got {answers!r}")
