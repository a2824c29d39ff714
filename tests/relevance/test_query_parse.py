"""The rule-based query parser: objects, negations, regions, whole-scene intent."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.relevance.query_parse import REGIONS, QueryParse, parse_query, region_mask


def parts(text):
    parse = parse_query(text)
    return parse.intent, parse.objects, parse.negations, parse.regions


@pytest.mark.parametrize(
    "text,objects",
    [
        ("the sky", ("sky",)),
        ("a photo of parked cars", ("parked cars",)),
        ("text on the sign", ("text on the sign",)),  # "on the" alone is no region
        ("traffic light", ("traffic light",)),
        ("cars and pedestrians", ("cars", "pedestrians")),
        ("find all the cars, buses or trucks in the image", ("cars", "buses", "trucks")),
        ("Where are the bicycles?", ("bicycles",)),
        ("show me road & sky", ("road", "sky")),
        ("cars and cars", ("cars",)),
        ("describe the red car", ("red car",)),  # a scene verb with an object: the object
        ("laptop", ("laptop",)),  # "top" only as a word of its own
    ],
)
def test_objects_are_split_and_stripped_of_request_words(text, objects):
    assert parts(text) == ("objects", objects, (), ())


@pytest.mark.parametrize(
    "text,expected",
    [
        ("everything except the road", ("except", (), ("road",), ())),
        ("everything but the road", ("except", (), ("road",), ())),
        ("not the sky", ("except", (), ("sky",), ())),
        ("all except for trees and poles", ("except", (), ("trees", "poles"), ())),
        ("cars except buses and trucks", ("objects", ("cars",), ("buses", "trucks"), ())),
        ("vehicles, excluding bicycles", ("objects", ("vehicles",), ("bicycles",), ())),
        ("people but not cyclists", ("objects", ("people",), ("cyclists",), ())),
    ],
)
def test_negations(text, expected):
    assert parts(text) == expected


@pytest.mark.parametrize(
    "text,expected",
    [
        ("the car on the left", ("objects", ("car",), (), ("left",))),
        ("pedestrians in the upper right", ("objects", ("pedestrians",), (), ("top-right",))),
        ("the top-left corner", ("region", (), (), ("top-left",))),
        ("the top left corner of the image", ("region", (), (), ("top-left",))),
        ("bottom right", ("region", (), (), ("bottom-right",))),
        ("the lower half", ("region", (), (), ("bottom",))),
        ("the middle of the image", ("region", (), (), ("centre",))),
        ("cars in the center", ("objects", ("cars",), (), ("centre",))),
        ("at the top, on the left", ("region", (), (), ("top-left",))),  # two halves: a corner
        ("the left and right sides", ("region", (), (), ("left", "right"))),
        ("show me the people on the right side", ("objects", ("people",), (), ("right",))),
        ("sky on the left except clouds", ("objects", ("sky",), ("clouds",), ("left",))),
    ],
)
def test_regions(text, expected):
    assert parts(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "describe",
        "Describe the image.",
        "what is happening?",
        "What's going on here",
        "what is in this picture",
        "summarize the whole scene",
        "what do you see",
        "everything",
    ],
)
def test_whole_scene_intent(text):
    parse = parse_query(text)
    assert parse.intent == "scene" and parse.scene
    assert parse.objects == () and parse.negations == ()


def test_a_scene_question_about_a_region_is_a_region():
    parse = parse_query("what is happening on the left")
    assert parse.intent == "region" and parse.regions == ("left",) and parse.scene


@pytest.mark.parametrize("text", [None, "", "   ", "?!"])
def test_empty_queries(text):
    assert parse_query(text) == QueryParse(text or "")
    assert parse_query(text).intent == "none"


@pytest.mark.parametrize(
    "text,objects,near,intent",
    [
        ("cars near the road", ("cars",), ("road",), "objects"),
        ("people next to cars and buses", ("people",), ("cars", "buses"), "objects"),
        ("near the road", (), ("road",), "region"),
        ("what is close to the car", (), ("car",), "region"),
        ("bikes beside the fence on the left", ("bikes",), ("fence",), "objects"),
    ],
)
def test_near_names_reference_objects(text, objects, near, intent):
    parse = parse_query(text)
    assert (parse.objects, parse.near, parse.intent) == (objects, near, intent)
    assert not parse.scene


def test_the_parse_serialises_and_non_strings_are_refused():
    assert parse_query("cars on the left except buses").to_json() == {
        "intent": "objects",
        "objects": ["cars"],
        "negations": ["buses"],
        "regions": ["left"],
        "scene": False,
        "near": [],
    }
    with pytest.raises(ValueError, match="string or None"):
        parse_query(3)


def test_a_very_long_query_parses_quickly():
    parse = parse_query("zebra " * 2000 + "on the left")
    assert parse.regions == ("left",) and len(parse.objects[0]) == len("zebra " * 2000) - 1


def test_region_masks_split_the_image_as_named():
    height, width = 6, 8
    left = region_mask(["left"], height, width)
    assert left[:, :4].all() and not left[:, 4:].any()
    corner = region_mask(["bottom-right"], height, width)
    assert corner.sum() == 12 and corner[3:, 4:].all()
    centre = region_mask(["centre"], height, width)
    assert centre.sum() == 3 * 4 and centre[2:4, 2:6].sum() == 8
    union = region_mask(["top-left", "bottom-right"], height, width)
    assert union.sum() == 24 and union[0, 0] == 1 and union[0, -1] == 0
    for region in REGIONS:  # every named region covers a quarter to a half of the image
        assert 0.2 <= region_mask([region], 33, 47).mean() <= 0.55
    with pytest.raises(ValueError, match="accepted: left"):
        region_mask(["north"], 4, 4)
    assert region_mask([], 3, 3).dtype == np.float32
