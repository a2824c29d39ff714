"""VQA soft accuracy, exact match and ANLS against hand-worked values."""

from __future__ import annotations

import pytest

from clusterlens.evaluate.vqa import anls, exact_match, normalize_answer, score, vqa_accuracy
from clusterlens.evaluate.vqa.metrics import levenshtein


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Two", "2"),
        ("the dog", "dog"),
        ("A red-ish car.", "red ish car"),
        ("1,000", "1000"),
        ("3.5", "3.5"),
        ("dont", "don't"),
        ("yes!", "yes"),
        ("  Ten\tApples ", "10 apples"),
    ],
)
def test_normalisation_follows_the_official_script(raw, normal):
    assert normalize_answer(raw) == normal


def test_soft_accuracy_counts_matches_over_the_ten_leave_one_out_subsets():
    answers = ["2"] * 2 + ["3"] * 8
    assert vqa_accuracy("two", answers) == pytest.approx(0.6)  # 2*(1/3) + 8*(2/3), / 10
    assert vqa_accuracy("3", answers) == pytest.approx(1.0)
    assert vqa_accuracy("4", answers) == 0.0
    assert vqa_accuracy("1", ["1"] + ["x"] * 9) == pytest.approx(0.3)  # 9 subsets of 1/3
    assert vqa_accuracy("cat", ["Cat"]) == 1.0  # one answer: exact match


def test_exact_match_normalises_both_sides():
    assert exact_match("Yes.", ["yes"]) == 1.0
    assert exact_match("the bus", ["Bus", "train"]) == 1.0
    assert exact_match("no", ["yes"]) == 0.0


def test_anls_is_one_minus_the_normalised_edit_distance_with_a_threshold():
    assert levenshtein("kitten", "sitting") == 3
    assert anls("Jonh Smith", ["John Smith"]) == pytest.approx(0.8)
    assert anls("  JOHN smith ", ["john smith"]) == 1.0
    assert anls("abcdef", ["abcxyz"]) == 0.0  # distance ratio 0.5: not under the threshold
    assert anls("abcdex", ["zzz", "abcdef"]) == pytest.approx(1 - 1 / 6)  # closest answer


def test_bad_metric_or_answers_are_refused():
    with pytest.raises(ValueError, match="unknown metric 'bleu'"):
        score("bleu", "a", ["a"])
    with pytest.raises(ValueError, match="non-empty list"):
        vqa_accuracy("a", [])
    with pytest.raises(ValueError, match="non-empty list"):
        exact_match("a", "a")
    assert score("anls", "a", ["a"]) == score("exact", "a", ["a"]) == 1.0
