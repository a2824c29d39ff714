"""Text queries -> CamVid classes, and the refusal to map unrelated text.

Tests marked slow load the packaged all-MiniLM-L6-v2 model; the stub-encoder tests
check the matching logic in milliseconds.

The first threshold (0.45) was chosen on exactly these lists; the shipped one (0.50)
on the phrase lists of benchmarks/matcher.py. Both separate these lists.
"""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.models.offline.segmenter import CAMVID_SYNONYMS
from clusterlens.models.text import DEFAULT_THRESHOLD, QueryMatcher

POSITIVES = {
    "vehicle": "Car",
    "person walking": "Pedestrian",
    "traffic sign": "SignSymbol",
    "sidewalk": "Pavement",
    "parked cars": "Car",
    "a photo of a car": "Car",
    "the street": "Road",
    "cars on the road": "Car",
    "a man crossing the street": "Pedestrian",
    "people": "Pedestrian",
    "cyclists": "Bicyclist",
    "someone on a bike": "Bicyclist",
    "stop sign": "SignSymbol",
    "traffic lights": "SignSymbol",
    "lamp posts": "Pole",
    "houses": "Building",
    "office buildings": "Building",
    "trees and bushes": "Tree",
    "green vegetation": "Tree",
    "blue sky": "Sky",
    "clouds": "Sky",
    "asphalt road": "Road",
    "the road surface": "Road",
    "a fence": "Fence",
    "metal railings": "Fence",
    "lorry": "Car",
    "pedestrians": "Pedestrian",
    "footpath next to the road": "Pavement",
    "a bus": "Car",
    "the kerb": "Pavement",
}
NEGATIVES = [
    "a photo of a giraffe",
    "quantum chromodynamics",
    "a bowl of soup",
    "a laptop keyboard",
    "birthday cake",
    "happiness",
    "a cat sleeping",
    "the stock market",
    "mathematics homework",
    "a glass of wine",
    "an elephant",
    "piano music",
    "a computer screen",
    "ocean waves",
    "a dragon",
]


@pytest.fixture(scope="module")
def matcher() -> QueryMatcher:
    return QueryMatcher(CAMVID_SYNONYMS)


@pytest.mark.slow  # loads the sentence model (a few seconds)
@pytest.mark.parametrize(("query", "expected"), POSITIVES.items())
def test_query_naming_a_class_matches_it(matcher, query, expected):
    result = matcher.match(query)
    assert result.matched
    assert expected in result.classes
    assert len(result.classes) <= 2  # only near-ties besides the best class
    assert result.scores[expected] >= DEFAULT_THRESHOLD


@pytest.mark.slow  # loads the sentence model (a few seconds)
@pytest.mark.parametrize("query", NEGATIVES)
def test_unrelated_query_is_reported_as_no_match(matcher, query):
    result = matcher.match(query)
    assert not result.matched
    assert result.classes == ()
    assert result.best[1] < result.threshold


@pytest.mark.slow  # loads the sentence model (a few seconds)
def test_threshold_separates_positives_from_negatives_with_a_gap(matcher):
    lowest_positive = min(matcher.match(q).scores[c] for q, c in POSITIVES.items())
    highest_negative = max(matcher.match(q).best[1] for q in NEGATIVES)
    assert highest_negative < DEFAULT_THRESHOLD < lowest_positive
    assert lowest_positive - highest_negative > 0.03


@pytest.mark.slow  # loads the sentence model (a few seconds)
def test_examples_from_the_issue_map_to_a_single_class(matcher):
    for query, expected in [
        ("vehicle", "Car"),
        ("person walking", "Pedestrian"),
        ("traffic sign", "SignSymbol"),
        ("sidewalk", "Pavement"),
    ]:
        assert matcher.match(query).classes == (expected,)


@pytest.mark.slow  # loads the sentence model (a few seconds)
def test_scores_cover_every_class_and_are_cosines(matcher):
    result = matcher.match("giraffe")
    assert set(result.scores) == set(CAMVID_SYNONYMS)
    assert all(-1.0 <= value <= 1.0 + 1e-6 for value in result.scores.values())


@pytest.mark.slow  # loads the sentence model (a few seconds)
def test_leading_filler_words_are_ignored(matcher):
    assert matcher.match("a photo of a car").scores == pytest.approx(matcher.match("car").scores)


class _BagOfWordsEncoder:
    """A tiny stand-in encoder: one axis per known word, so scores are predictable."""

    words = ["car", "road", "sky", "truck"]

    def encode(self, texts, convert_to_numpy=True, normalize_embeddings=True):
        vectors = np.array(
            [[float(word in text.split()) for word in self.words] + [0.1] for text in texts]
        )
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def test_threshold_and_margin_logic_with_a_stub_encoder():
    matcher = QueryMatcher(
        {"Car": ["truck"], "Road": [], "Sky": []},
        encoder=_BagOfWordsEncoder(),
        threshold=0.5,
        compound_heads=False,  # read "car road" whole: the compound rule is tested below
    )
    assert matcher.match("truck").classes == ("Car",)
    # "car road" is equally close to Car and Road: a near-tie returns both.
    assert set(matcher.match("car road").classes) == {"Car", "Road"}
    assert not matcher.match("banana").matched


@pytest.mark.parametrize("query", ["", "   ", None, 3])
def test_bad_queries_raise_value_error(query):
    matcher = QueryMatcher({"Car": []}, encoder=_BagOfWordsEncoder())
    with pytest.raises(ValueError, match="query"):
        matcher.match(query)


def test_bad_matcher_settings_are_rejected():
    with pytest.raises(ValueError, match="threshold"):
        QueryMatcher({"Car": []}, threshold=1.5)
    with pytest.raises(ValueError, match="at least one class"):
        QueryMatcher({})
    with pytest.raises(ValueError, match="empty phrase"):
        QueryMatcher({"Car": [" "]})


# ------------------------------------------------------------ trust in a match (issue 16)


def test_a_match_decided_again_at_another_threshold():
    from clusterlens.models.text import QueryMatch

    match = QueryMatch("q", True, ("Car",), {"Car": 0.62, "Road": 0.6, "Sky": 0.1}, 0.45)
    assert match.runner_up == ("Road", 0.6)
    stricter = match.with_threshold(0.7)
    assert not stricter.matched and stricter.classes == () and stricter.threshold == 0.7
    assert match.with_threshold(0.3).classes == ("Car", "Road")  # the near-tie stays
    assert match.with_threshold(0.3, margin=0.0).classes == ("Car",)
    with pytest.raises(ValueError, match="threshold must lie in"):
        match.with_threshold(1.5)
    assert QueryMatch("q", True, ("q",), {"q": 1.0}, 0.0).runner_up is None


def test_heads_stop_at_the_first_preposition_or_participle():
    from clusterlens.models.text import head_of

    assert head_of("text on the sign") == "text"
    assert head_of("a man crossing the street") == "a man"
    assert head_of("a photo of parked cars") == "parked cars"  # filler first
    assert head_of("the driving lane") == "the driving lane"


def test_loose_matches_are_low_scores_or_classes_named_by_a_modifier():
    from clusterlens.models.text import LOOSE_MATCH, QueryMatch, loose_reason

    def match_of(query, best, score):
        others = {"Road": 0.1, "Sky": 0.1, "SignSymbol": 0.1, "Pedestrian": 0.1}
        scores = others | {best: score}
        return QueryMatch(query, score >= 0.45, (best,) if score >= 0.45 else (), scores, 0.45)

    heads = {"text": match_of("text", "Road", 0.2), "a man": match_of("a man", "Pedestrian", 0.6)}
    lookup = heads.__getitem__
    assert "< 0.50" in loose_reason(match_of("a ghost", "Pedestrian", LOOSE_MATCH - 0.04), lookup)
    reason = loose_reason(match_of("text on the sign", "SignSymbol", 0.64), lookup)
    assert "comes from the words after 'text'" in reason
    assert loose_reason(match_of("a man crossing the street", "Pedestrian", 0.6), lookup) is None
    assert loose_reason(match_of("a giraffe", "Sky", 0.3), lookup) is None  # not accepted
    assert loose_reason(QueryMatch("dog", True, ("dog",), {"dog": 1.0}, 0.0), lookup) is None


@pytest.mark.slow  # loads the sentence model
def test_the_issue_examples_are_noted_as_loose_or_refused(matcher):
    from clusterlens.models.text import loose_reason

    match = matcher.match("text on the sign")
    assert match.matched and loose_reason(match, matcher.match)
    for query in ("a phone", "the moon"):  # accepted as loose at 0.45, refused at 0.50
        assert not matcher.match(query).matched, query
    for query in ("parked cars", "the road", "people crossing the street"):
        assert loose_reason(matcher.match(query), matcher.match) is None, query


# ------------------------------------------- readings and the outside vocabulary (issue 16)


def test_the_surer_reading_wins_whole_or_head_with_a_stub_encoder():
    matcher = QueryMatcher({"Car": [], "Road": [], "Sky": []}, encoder=_BagOfWordsEncoder())
    # whole "car on the road" is a near-tie; its head "car" alone is sure
    whole = matcher._score("car on the road")[0]
    assert max(whole.values()) < max(matcher._score("car")[0].values())
    assert matcher.match("car on the road").classes == ("Car",)
    assert matcher.scores("car on the road") == pytest.approx(matcher.scores("car"))


def test_a_query_nearer_an_outside_phrase_is_refused_with_a_stub_encoder():
    encoder = _BagOfWordsEncoder()
    classes = {"Car": [], "Sky": []}
    plain = QueryMatcher(classes, encoder=encoder, threshold=0.3)
    guarded = QueryMatcher(classes, encoder=encoder, threshold=0.3, outside=["truck"])
    assert plain.match("truck car").classes == ("Car",)
    refused = guarded.match("truck")
    assert not refused.matched and refused.outside[0] == "truck"
    assert refused.with_threshold(0.0).classes == ()  # no threshold brings it back
    assert guarded.match("car").classes == ("Car",) and guarded.match("car").outside is None


@pytest.fixture(scope="module")
def shipped_matcher():
    from clusterlens.models.offline.segmenter import CAMVID_OUTSIDE

    return QueryMatcher(CAMVID_SYNONYMS, outside=CAMVID_OUTSIDE)


@pytest.mark.slow  # loads the sentence model
def test_people_on_the_pavement_are_pedestrians_and_someone_on_a_bike_a_cyclist(shipped_matcher):
    assert shipped_matcher.match("people on the pavement").classes[0] == "Pedestrian"
    assert shipped_matcher.match("cars in traffic").classes[0] == "Car"
    assert shipped_matcher.match("someone on a bike").classes[0] == "Bicyclist"


@pytest.mark.slow  # loads the sentence model
def test_the_offline_model_refuses_what_coco_names_and_camvid_lacks(shipped_matcher):
    for query in ("the dog", "an umbrella", "a pizza", "a boat"):
        match = shipped_matcher.match(query)
        assert not match.matched and match.outside is not None, query
    for query in ("a person with an umbrella", "parked cars", "the traffic lights"):
        assert shipped_matcher.match(query).matched, query


# ------------------------------ the category outside vocabulary (issue 16, precision)


def test_no_outside_name_is_something_camvid_holds_or_a_class_phrase():
    from clusterlens.models.offline.segmenter import CAMVID_OUTSIDE, COCO_OUTSIDE
    from clusterlens.models.offline.vocabulary import AMBIGUOUS, CAMVID_HELD, CATEGORY_OUTSIDE
    from clusterlens.models.text import _clean

    held = {name for names in CAMVID_HELD.values() for name in names} | set(AMBIGUOUS)
    phrases = {_clean(p) for name, ps in CAMVID_SYNONYMS.items() for p in (name, *ps)}
    assert not held & set(CAMVID_OUTSIDE)
    assert not phrases & set(CAMVID_OUTSIDE)
    assert {"walking stick", "table lamp", "fishing rod", "cargo ship"} <= set(CATEGORY_OUTSIDE)
    assert {"double decker", "lamp", "motorcycle", "bench"} <= held  # kept out
    assert set(COCO_OUTSIDE) <= set(CAMVID_OUTSIDE)
    assert len(set(CAMVID_OUTSIDE)) == len(CAMVID_OUTSIDE)
    for name in (*CATEGORY_OUTSIDE, *held):
        assert name and name == " ".join(name.lower().split()), repr(name)


def test_phrase_vectors_are_kept_on_disk_and_reused(tmp_path, monkeypatch):
    from clusterlens.models import text

    monkeypatch.setenv("CLUSTERLENS_CACHE", str(tmp_path))
    calls = []

    def fake_embed(texts, encoder=None):
        calls.append(list(texts))
        return _BagOfWordsEncoder().encode(list(texts))

    monkeypatch.setattr(text, "embed", fake_embed)
    first = text.cached_embeddings(["car", "road"])
    again = text.cached_embeddings(["car", "road"])
    other = text.cached_embeddings(["car", "sky"])
    assert calls == [["car", "road"], ["car", "sky"]]  # the second call read the file
    np.testing.assert_allclose(first, again)
    assert other.shape == (2, 5)
    assert len(list((tmp_path / "sentence").glob("phrases-*.npy"))) == 2
    (tmp_path / "sentence").chmod(0o500)  # an unwritable cache is skipped, not an error
    try:
        assert text.cached_embeddings(["truck"]).shape == (1, 5)
    finally:
        (tmp_path / "sentence").chmod(0o700)


@pytest.mark.slow  # loads the sentence model
def test_near_misses_of_the_development_lists_are_refused_by_category_names(shipped_matcher):
    # all three were accepted with COCO's names alone (Pole 0.75, Tree 0.52, Sky 0.55)
    for query in ("a lamp on a desk", "a cactus", "the stars"):
        match = shipped_matcher.match(query)
        assert not match.matched and match.outside is not None, query
    for query, expected in [
        ("a double-decker bus", "Car"),
        ("lamp posts", "Pole"),
        ("the traffic lights ahead", "SignSymbol"),
        ("a fence along the road", "Fence"),
    ]:
        assert shipped_matcher.match(query).classes[0] == expected, query


@pytest.mark.slow  # loads the sentence model; embeds 320 phrases
def test_development_lists_precision_and_no_unnoted_none_at_the_shipped_threshold(
    shipped_matcher,
):
    import importlib.util
    from pathlib import Path

    from clusterlens.models.text import loose_reason

    path = Path(__file__).resolve().parents[2] / "benchmarks" / "matcher.py"
    if not path.exists():
        pytest.skip("benchmarks/matcher.py is not beside the tests")
    spec = importlib.util.spec_from_file_location("matcher_lists", path)
    module = importlib.util.module_from_spec(spec)
    import sys

    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    for phrases in (module.PHRASES, module.HELD_OUT, module.FRESH):
        accepted = right = 0
        for label, texts in phrases.items():
            for text in texts:
                match = shipped_matcher.match(text)
                if not match.matched:
                    continue
                accepted += 1
                right += match.best[0] == label
                if label == module.NONE:
                    assert loose_reason(match, shipped_matcher.match), text
        assert right / accepted >= 0.93


# ------------------------------------- noun compounds: the last noun names the thing (issue 16)


def test_compound_heads_are_the_last_noun_of_the_first_noun_phrase():
    from clusterlens.models.text import compound_head, noun_phrase, singular

    assert compound_head("a bus lane") == ("lane", "bus")
    assert compound_head("the bus lane on the left") == ("lane", "bus")
    # a known limit of the rule: an "-ing" noun with words after it is taken for a verb
    assert noun_phrase("the pedestrian crossing on the left") == ["pedestrian"]
    assert compound_head("a chain-link fence") == ("fence", "chain-link")
    assert compound_head("lorries") == ("lorry", "")  # a plural alone: read singular
    assert compound_head("the grass") is None  # one singular noun: nothing to read apart
    assert compound_head("a photo of two parked cars") == ("car", "parked")
    assert noun_phrase("a woman pushing a pram") == ["woman"]  # a participle ends it
    assert noun_phrase("arrows painted on the road") == ["arrows"]
    assert noun_phrase("the lane ahead") == ["lane"]
    assert noun_phrase("the sky between the buildings") == ["sky"]
    assert [singular(w) for w in ("buses", "benches", "leaves", "bus", "glass")] == [
        "buse", "bench", "leave", "bus", "glass",
    ]  # fmt: skip


def test_a_class_named_by_a_modifier_gives_way_to_the_compound_head_with_a_stub_encoder():
    classes = {"Car": [], "Road": [], "Sky": []}
    encoder = _BagOfWordsEncoder()
    plain = QueryMatcher(classes, encoder=encoder, compound_heads=False)
    checked = QueryMatcher(classes, encoder=encoder)
    # whole, "car road" is a tie of Car and Road; a car road is a road
    assert set(plain.match("car road").classes) == {"Car", "Road"}
    assert checked.match("car road").classes == ("Road",)
    assert checked.scores("car road")["Car"] < plain.scores("car road")["Car"]
    # a class phrase that holds the head is a known compound: kept
    known = QueryMatcher({"Car": ["truck road"], "Road": [], "Sky": []}, encoder=encoder)
    assert known.match("the truck road").classes == ("Car",)
    # the head "road" nearer an outside name: the phrase is refused
    guarded = QueryMatcher(classes, encoder=encoder, outside=["road"], threshold=0.3)
    refused = guarded.match("car road")
    assert not refused.matched and refused.outside[0] == "road"


@pytest.mark.slow  # loads the sentence model
def test_noun_compounds_of_the_development_lists_are_read_by_their_last_noun(shipped_matcher):
    before = QueryMatcher(CAMVID_SYNONYMS, outside=shipped_matcher.outside, compound_heads=False)
    for query, wrong, right in [
        ("a bus lane", "Car", "Road"),
        ("a pedestrian path", "Pedestrian", "Pavement"),
        ("lorries", "Pavement", "Car"),
    ]:
        assert before.match(query).best[0] == wrong, query  # the judge list's false matches
        assert shipped_matcher.match(query).classes[0] == right, query
    assert not shipped_matcher.match("a pedestrian crossing").matched  # was Pedestrian
    for query, expected in [  # known compounds and modifiers that say what kind: kept
        ("traffic lights", "SignSymbol"),
        ("lamp posts", "Pole"),
        ("street lights", "Pole"),
        ("traffic signal", "SignSymbol"),
        ("a parked bicycle", "Bicyclist"),
        ("a police car", "Car"),
        ("road signs", "SignSymbol"),
    ]:
        assert shipped_matcher.match(query).classes[0] == expected, query
