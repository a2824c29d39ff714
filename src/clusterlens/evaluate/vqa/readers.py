"""Question sets in the local layouts the benchmarks ship in, read into one item list.

Every reader returns :class:`VQAItem` s (id, image path, question, answers, metric):

========  ======================================================  =================  ======
layout    file given                                              images             metric
========  ======================================================  =================  ======
jsonl     lines of ``{"image", "question", "answers"}`` (+ "id",  paths relative to  vqa
          "metric")                                               the file
vqav2     ``v2_OpenEnded_mscoco_<split>_questions.json`` with     ``<split>/COCO_``  vqa
          ``v2_mscoco_<split>_annotations.json`` beside it        ``<split>_<id:012>
                                                                  .jpg`` beside
textvqa   ``TextVQA_0.5.1_val.json`` (``{"data": [...]}``)        ``train_images/``  vqa
                                                                  ``<image_id>.jpg``
gqa       ``testdev_balanced_questions.json`` (id -> question)    ``images/<imageId>
                                                                  .jpg`` beside
pope      ``coco_pope_<split>.json`` (JSON lines: question_id,    ``val2014/`` beside exact
          image, text, label)
docvqa    ``val_v1.0.json`` (``{"data": [...]}``, questionId,     ``image`` relative  anls
          image, answers)                                         to the file
========  ======================================================  =================  ======

The image folder can always be overridden (``images=``). :func:`read_questions`
detects the layout from the file's content when none is given.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from clusterlens.evaluate.vqa.metrics import METRICS

LAYOUTS = ("jsonl", "vqav2", "textvqa", "gqa", "pope", "docvqa")


@dataclass(frozen=True)
class VQAItem:
    """One question about one image.

    Attributes:
        id: unique within the set (the benchmark's question id, as text).
        image: path of the image file.
        question: the question.
        answers: accepted answers (ten human answers for VQAv2 / TextVQA).
        metric: "vqa", "exact" or "anls".
    """

    id: str
    image: Path
    question: str
    answers: tuple[str, ...]
    metric: str = "vqa"

    def to_json(self) -> dict[str, Any]:
        payload = asdict(self)
        payload["image"] = str(self.image)
        payload["answers"] = list(self.answers)
        return payload


def read_questions(
    path: str | Path, layout: str | None = None, images: Path | None = None
) -> list[VQAItem]:
    """The items of a question file, in file order.

    Args:
        path: the question file (see the module docstring for each layout's file).
        layout: one of :data:`LAYOUTS`; None detects it from the content.
        images: the folder the images are in (default: the layout's place for them).

    Raises:
        FileNotFoundError: the file (or VQAv2's annotation file) is missing.
        ValueError: unknown layout, a layout that cannot be detected, duplicate ids,
            or a record without the fields its layout needs.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"question file not found: {path}")
    layout = detect_layout(path) if layout is None else layout
    if layout not in LAYOUTS:
        raise ValueError(f"unknown question layout {layout!r}; choose from {', '.join(LAYOUTS)}")
    items = _READERS[layout](path, images)
    _check_unique(items, path)
    return items


def detect_layout(path: Path) -> str:
    """The layout of ``path`` from its content (see :data:`LAYOUTS`)."""
    if path.suffix == ".jsonl":
        return "jsonl"  # ours: missing fields are then reported by name
    data = _load_json_or_lines(path)
    if isinstance(data, list):
        first = data[0] if data else {}
        if {"text", "label", "image"} <= set(first):
            return "pope"
        if {"image", "question", "answers"} <= set(first):
            return "jsonl"
    elif isinstance(data, dict):
        if "questions" in data:
            return "vqav2"
        records = data.get("data")
        if isinstance(records, list) and records:
            return "docvqa" if "questionId" in records[0] else "textvqa"
        first = next(iter(data.values()), None)
        if isinstance(first, dict) and "imageId" in first:
            return "gqa"
    raise ValueError(
        f"cannot tell the layout of {path}; pass one of {', '.join(LAYOUTS)} "
        "(JSONL items need image, question and answers)"
    )


def _load_json_or_lines(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return _json_lines(path, text)
    # a JSON-lines file of one record parses as that record
    one_record = isinstance(data, dict) and len(text.strip().splitlines()) == 1
    return [data] if one_record and path.suffix in (".jsonl", ".json") and _is_item(data) else data


def _is_item(record: dict[str, Any]) -> bool:
    return "question" in record or "text" in record


def _json_lines(path: Path, text: str) -> list[Any]:
    records = []
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{number} is neither JSON nor JSON lines: {err}") from err
    return records


def _field(record: dict[str, Any], name: str, where: str) -> Any:
    if name not in record:
        raise ValueError(f"{where}: missing field {name!r} (has {sorted(record)})")
    return record[name]


def _read_jsonl(path: Path, images: Path | None) -> list[VQAItem]:
    root = images or path.parent
    items = []
    for index, record in enumerate(_load_json_or_lines(path)):
        where = f"{path} item {index}"
        answers = _field(record, "answers", where)
        answers = [answers] if isinstance(answers, str) else answers
        metric = record.get("metric", "vqa")
        if metric not in METRICS:
            raise ValueError(f"{where}: metric must be one of {METRICS}, got {metric!r}")
        items.append(
            VQAItem(
                str(record.get("id", index)),
                root / _field(record, "image", where),
                _field(record, "question", where),
                tuple(str(answer) for answer in answers),
                metric,
            )
        )
    return items


def _read_vqav2(path: Path, images: Path | None) -> list[VQAItem]:
    questions = json.loads(path.read_text(encoding="utf-8"))
    annotation_files = sorted(path.parent.glob("*annotations*.json"))
    if not annotation_files:
        raise FileNotFoundError(
            f"no VQAv2 annotation file (*annotations*.json) next to {path}; "
            "put v2_mscoco_<split>_annotations.json beside the questions"
        )
    annotations = json.loads(annotation_files[0].read_text(encoding="utf-8"))
    by_question = {note["question_id"]: note for note in annotations["annotations"]}
    split = questions.get("data_subtype", "val2014")
    root = images or path.parent / split
    items = []
    for question in questions["questions"]:
        note = by_question.get(question["question_id"])
        if note is None:
            raise ValueError(f"question {question['question_id']} has no annotation")
        image = root / f"COCO_{split}_{int(question['image_id']):012d}.jpg"
        answers = tuple(answer["answer"] for answer in note["answers"])
        items.append(VQAItem(str(question["question_id"]), image, question["question"], answers))
    return items


def _read_textvqa(path: Path, images: Path | None) -> list[VQAItem]:
    root = images or path.parent / "train_images"
    return [
        VQAItem(
            str(record["question_id"]),
            root / f"{record['image_id']}.jpg",
            record["question"],
            tuple(record["answers"]),
        )
        for record in json.loads(path.read_text(encoding="utf-8"))["data"]
    ]


def _read_gqa(path: Path, images: Path | None) -> list[VQAItem]:
    root = images or path.parent / "images"
    return [
        VQAItem(
            str(question_id),
            root / f"{record['imageId']}.jpg",
            record["question"],
            (record["answer"],),
            "exact",
        )
        for question_id, record in json.loads(path.read_text(encoding="utf-8")).items()
    ]


def _read_pope(path: Path, images: Path | None) -> list[VQAItem]:
    root = images or path.parent / "val2014"
    return [
        VQAItem(
            str(record["question_id"]),
            root / record["image"],
            record["text"],
            (record["label"],),
            "exact",
        )
        for record in _load_json_or_lines(path)
    ]


def _read_docvqa(path: Path, images: Path | None) -> list[VQAItem]:
    root = images or path.parent
    items = []
    for record in json.loads(path.read_text(encoding="utf-8"))["data"]:
        if "answers" not in record:
            raise ValueError(
                f"DocVQA question {record.get('questionId')} has no answers (the test split "
                "has none: use the val split)"
            )
        image = root / record["image"] if images is None else root / Path(record["image"]).name
        answers = tuple(record["answers"])
        items.append(VQAItem(str(record["questionId"]), image, record["question"], answers, "anls"))
    return items


def _check_unique(items: list[VQAItem], path: Path) -> None:
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise ValueError(f"{path}: question id {item.id!r} appears twice; ids must be unique")
        seen.add(item.id)


_READERS: dict[str, Callable[[Path, Path | None], list[VQAItem]]] = {
    "jsonl": _read_jsonl,
    "vqav2": _read_vqav2,
    "textvqa": _read_textvqa,
    "gqa": _read_gqa,
    "pope": _read_pope,
    "docvqa": _read_docvqa,
}
