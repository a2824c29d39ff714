"""Each benchmark's local layout, written small in a temporary folder, reads into items."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from clusterlens.evaluate.vqa import LAYOUTS, detect_layout, read_questions


def write(path: Path, payload) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload), encoding="utf-8")
    return path


def write_lines(path: Path, records) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return path


def test_jsonl(tmp_path):
    path = write_lines(
        tmp_path / "set.jsonl",
        [
            {"image": "a.png", "question": "what?", "answers": ["x", "y"]},
            {"id": "q7", "image": "b.png", "question": "how?", "answers": "z", "metric": "anls"},
        ],
    )
    items = read_questions(path)
    assert detect_layout(path) == "jsonl"
    assert [item.id for item in items] == ["0", "q7"]
    assert items[0].image == tmp_path / "a.png" and items[0].answers == ("x", "y")
    assert items[1].answers == ("z",) and items[1].metric == "anls"


def test_vqav2(tmp_path):
    questions = {
        "data_subtype": "val2014",
        "questions": [{"question_id": 5001, "image_id": 42, "question": "Is it red?"}],
    }
    answers = [{"answer": "yes", "answer_id": i} for i in range(10)]
    path = write(tmp_path / "v2_OpenEnded_mscoco_val2014_questions.json", questions)
    write(
        tmp_path / "v2_mscoco_val2014_annotations.json",
        {"annotations": [{"question_id": 5001, "image_id": 42, "answers": answers}]},
    )
    [item] = read_questions(path)
    assert detect_layout(path) == "vqav2"
    assert item.id == "5001" and item.metric == "vqa" and item.answers == ("yes",) * 10
    assert item.image == tmp_path / "val2014" / "COCO_val2014_000000000042.jpg"


def test_vqav2_without_annotations_says_what_is_missing(tmp_path):
    path = write(tmp_path / "q_questions.json", {"questions": []})
    with pytest.raises(FileNotFoundError, match="annotation file"):
        read_questions(path)


def test_textvqa(tmp_path):
    record = {
        "question_id": 3,
        "image_id": "abc123",
        "question": "brand?",
        "answers": ["sony"] * 10,
    }
    path = write(tmp_path / "TextVQA_0.5.1_val.json", {"dataset_name": "textvqa", "data": [record]})
    [item] = read_questions(path)
    assert detect_layout(path) == "textvqa"
    assert item.image == tmp_path / "train_images" / "abc123.jpg" and item.metric == "vqa"


def test_gqa(tmp_path):
    path = write(
        tmp_path / "testdev_balanced_questions.json",
        {"201": {"imageId": "n123", "question": "Which side?", "answer": "left"}},
    )
    [item] = read_questions(path)
    assert detect_layout(path) == "gqa"
    assert (item.id, item.answers, item.metric) == ("201", ("left",), "exact")
    assert item.image == tmp_path / "images" / "n123.jpg"


def test_pope(tmp_path):
    path = write_lines(
        tmp_path / "coco_pope_random.json",
        [
            {
                "question_id": 1,
                "image": "COCO_val2014_1.jpg",
                "text": "Is there a dog?",
                "label": "yes",
            },
            {
                "question_id": 2,
                "image": "COCO_val2014_2.jpg",
                "text": "Is there a cat?",
                "label": "no",
            },
        ],
    )
    items = read_questions(path)
    assert detect_layout(path) == "pope"
    assert [item.answers for item in items] == [("yes",), ("no",)]
    assert items[0].image == tmp_path / "val2014" / "COCO_val2014_1.jpg"
    assert read_questions(path, images=tmp_path / "elsewhere")[1].image.parent.name == "elsewhere"


def test_docvqa(tmp_path):
    record = {
        "questionId": 9,
        "question": "Date?",
        "image": "documents/p1.png",
        "answers": ["1 May"],
    }
    path = write(tmp_path / "val_v1.0.json", {"dataset_split": "val", "data": [record]})
    [item] = read_questions(path)
    assert detect_layout(path) == "docvqa"
    assert item.metric == "anls" and item.image == tmp_path / "documents" / "p1.png"
    write(tmp_path / "test_v1.0.json", {"data": [{"questionId": 1, "question": "?", "image": "x"}]})
    with pytest.raises(ValueError, match="no answers"):
        read_questions(tmp_path / "test_v1.0.json", layout="docvqa")


def test_errors_name_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match="question file not found"):
        read_questions(tmp_path / "missing.jsonl")
    odd = write(tmp_path / "odd.json", {"hello": 1})
    with pytest.raises(ValueError, match="cannot tell the layout"):
        read_questions(odd)
    with pytest.raises(ValueError, match="unknown question layout 'coco'"):
        read_questions(odd, layout="coco")
    twice = write_lines(
        tmp_path / "twice.jsonl",
        [{"id": "a", "image": "x", "question": "q", "answers": ["y"]}] * 2,
    )
    with pytest.raises(ValueError, match="appears twice"):
        read_questions(twice)
    broken = write_lines(tmp_path / "broken.jsonl", [{"image": "x", "question": "q"}])
    with pytest.raises(ValueError, match="missing field 'answers'"):
        read_questions(broken)
    assert LAYOUTS == ("jsonl", "vqav2", "textvqa", "gqa", "pope", "docvqa")
