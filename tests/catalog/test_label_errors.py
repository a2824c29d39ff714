"""Label-error ranking: each kind found and ranked first, reasons, read-only, clear errors."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import pytest

from clusterlens.catalog.label_errors import (
    NEIGHBOURS,
    BoxIssue,
    ImageLabelIssue,
    box_iou,
    load_images,
    loss_evidence,
    rank_label_errors,
    rank_label_errors_with_evidence,
)
from clusterlens.catalog.store import CatalogStore, ImageRecord

MODEL = "yolo:test.pt"
NAMES = ("car", "person", "sign")
WIDTH, HEIGHT = 160, 120
# four slots per image, far apart: no two objects overlap
SLOTS = ((10, 10, 50, 50), (90, 10, 140, 55), (10, 65, 55, 110), (95, 70, 150, 115))


def _line(class_id: int, box: tuple[float, ...], size: tuple[int, int]) -> str:
    """A YOLO box line of a pixel box in an image of ``size`` (width, height)."""
    (x1, y1, x2, y2), (width, height) = box, size
    cx, cy, w, h = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, x2 - x1, y2 - y1
    return f"{class_id} {cx:.6f} {cy:.6f} {w / width:.6f} {h / height:.6f}"


def _objects(count: int = 12, seed: int = 0) -> list[list[tuple[int, tuple]]]:
    """Per image, (class, box) of 2 or 3 objects in distinct slots."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        slots = rng.choice(len(SLOTS), size=int(rng.integers(2, 4)), replace=False)
        out.append([(int(rng.integers(0, 3)), SLOTS[s]) for s in sorted(slots)])
    return out


def make_catalog(
    root: Path,
    labels: list[list[tuple[int, tuple]]],
    predictions: list[list[tuple[int, tuple, float]]],
    cls_losses: list[float] | None = None,
    with_labels: bool = True,
    size: tuple[int, int] = (WIDTH, HEIGHT),
) -> Path:
    """A catalog written with the store's API: label files, predictions, losses, embeddings."""
    (root / "labels").mkdir(parents=True, exist_ok=True)
    (root / "data.yaml").write_text(f"names: {list(NAMES)}\n")  # as a YOLO data set has
    db = root / "catalog.db"
    rng = np.random.default_rng(1)
    with CatalogStore(db) as store:
        entries = []
        for index, objects in enumerate(labels):
            label_path = root / "labels" / f"im{index:02d}.txt"
            label_path.write_text("".join(_line(c, b, size) + "\n" for c, b in objects))
            entries.append((root / f"im{index:02d}.png", *size, f"{index:064x}", label_path))
        if not with_labels:
            entries = [entry[:4] + (None,) for entry in entries]
        store.register_images(entries)
        ids = store.image_ids([entry[0] for entry in entries])
        run = store.start_run(MODEL, "yolo", {}, {})
        records = []
        for index, entry in enumerate(entries):
            rows = [
                {
                    "x1": box[0],
                    "y1": box[1],
                    "x2": box[2],
                    "y2": box[3],
                    "confidence": conf,
                    "class_id": c,
                    "class_name": NAMES[c],
                }
                for c, box, conf in predictions[index]
            ]
            cls = 1.0 + 0.05 * rng.standard_normal() if cls_losses is None else cls_losses[index]
            losses = {"box": 1.0 + 0.05 * rng.standard_normal(), "cls": cls, "dfl": 1.0}
            records.append(
                ImageRecord(
                    ids[str(entry[0])],
                    rng.standard_normal(8).astype(np.float32),
                    predictions=rows,
                    losses={**losses, "seg": None} if with_labels else None,
                )
            )
        store.write_batch(MODEL, run, records)
        store.finish_run(run, len(records), 0)
    return db


def _good_predictions(labels, jitter: float = 1.0):
    """A detector that sees every labelled object, 1 px off, at confidence 0.9."""
    return [[(c, tuple(v + jitter for v in box), 0.9) for c, box in objects] for objects in labels]


def _corrupted(kind: str):
    """Clean predictions, labels of image 5 corrupted one way; the corrupted object."""
    labels = _objects()
    predictions = _good_predictions(labels)
    objects = labels[5]
    if kind == "missing":  # the label of object 0 dropped
        labels[5] = objects[1:]
        return labels, predictions, objects[0]
    if kind == "spurious":  # a label where nothing is (a free slot)
        free = next(s for s in SLOTS if s not in [b for _, b in objects])
        labels[5] = [*objects, (0, free)]
        return labels, predictions, labels[5][-1]
    if kind == "wrong_class":
        c, box = objects[0]
        labels[5] = [((c + 1) % 3, box), *objects[1:]]
        return labels, predictions, labels[5][0]
    c, box = objects[0]  # badly_placed: shifted right by 40% of its width
    shift = 0.4 * (box[2] - box[0])
    labels[5] = [(c, (box[0] + shift, box[1], box[2] + shift, box[3])), *objects[1:]]
    return labels, predictions, labels[5][0]


@pytest.mark.parametrize("kind", ["missing", "spurious", "wrong_class", "badly_placed"])
def test_each_kind_of_corruption_is_found_and_ranked_first(tmp_path, kind):
    labels, predictions, corrupted = _corrupted(kind)
    db = make_catalog(tmp_path, labels, predictions)
    issues = rank_label_errors(db, MODEL)
    assert len(issues) == 12
    first = issues[0]
    assert first.path.endswith("im05.png")
    assert first.score > 0.3 and all(issue.score < 0.2 for issue in issues[1:])
    box = first.boxes[0]
    assert box.kind == kind and 0 < box.score <= 1
    if kind == "missing":
        assert box.label_index is None and box.prediction_rank == 0
        assert box.class_name == NAMES[corrupted[0]]
        np.testing.assert_allclose(box.box, [v + 1 for v in corrupted[1]], atol=0.1)
    else:
        assert labels[5][box.label_index] == corrupted
        assert box.class_name == NAMES[corrupted[0]]
        np.testing.assert_allclose(box.box, corrupted[1], atol=0.1)
        assert (box.prediction_rank is None) == (kind == "spurious")
    assert f"{kind} 1" in first.reason


def test_a_clean_catalog_has_no_candidate_boxes(tmp_path):
    labels = _objects()
    db = make_catalog(tmp_path, labels, _good_predictions(labels))
    issues = rank_label_errors(db, MODEL)
    assert [issue.boxes for issue in issues] == [()] * 12
    assert max(issue.score for issue in issues) < 0.2


def test_a_missed_pole_counts_less_than_a_missed_car(tmp_path):
    """A spurious-looking label of a class the model often misses is weak evidence."""
    labels = _objects()
    predictions = _good_predictions(labels)
    for index in range(12):  # the model never finds class 2 ("sign")
        predictions[index] = [p for p in predictions[index] if p[0] != 2]
    db = make_catalog(tmp_path, labels, predictions)
    by_class = {}
    for issue in rank_label_errors(db, MODEL):
        for box in issue.boxes:
            by_class.setdefault(box.class_name, []).append(box.score)
    assert set(by_class) == {"sign"} and max(by_class["sign"]) <= 0.25
    labels, predictions, _ = _corrupted("spurious")  # a car the model would have found
    car = rank_label_errors(make_catalog(tmp_path / "car", labels, predictions), MODEL)
    assert car[0].boxes[0].score >= 3 * max(by_class["sign"])


def test_a_high_loss_unlike_its_neighbours_raises_an_image_and_is_explained(tmp_path):
    labels = _objects()
    losses = [1.0 + 0.01 * i for i in range(12)]
    losses[7] = 3.0
    db = make_catalog(tmp_path, labels, _good_predictions(labels), cls_losses=losses)
    issues = rank_label_errors(db, MODEL, loss_weight=0.5)
    assert issues[0].path.endswith("im07.png") and issues[0].boxes == ()
    assert issues[0].score > 0.3 and issues[1].score < 0.05
    assert "cls loss 3.00" in issues[0].reason
    assert "5 nearest images by embedding (#" in issues[0].reason
    near = issues[0].reason.split("embedding (")[1].rstrip(")").split(", ")
    assert len(near) == 5 and all(1.0 <= float(n.split()[1]) < 1.2 for n in near)
    without = rank_label_errors(db, MODEL, loss_weight=0.0)
    assert max(issue.score for issue in without) == 0.0


def test_top_json_and_types(tmp_path):
    labels, predictions, _ = _corrupted("wrong_class")
    db = make_catalog(tmp_path, labels, predictions)
    issues = rank_label_errors(db, MODEL, top=3)
    assert len(issues) == 3 and isinstance(issues[0], ImageLabelIssue)
    assert isinstance(issues[0].boxes[0], BoxIssue)
    payload = json.loads(json.dumps(issues[0].to_json()))
    assert payload["boxes"][0]["kind"] == "wrong_class" and len(payload["boxes"][0]["box"]) == 4
    assert payload["image_id"] == issues[0].image_id
    with pytest.raises(ValueError, match="top must be"):
        rank_label_errors(db, MODEL, top=0)


def test_an_open_store_is_used_as_given(tmp_path):
    labels, predictions, _ = _corrupted("missing")
    db = make_catalog(tmp_path, labels, predictions)
    with CatalogStore(db, readonly=True) as store:
        assert rank_label_errors(store, MODEL)[0].boxes[0].kind == "missing"


def test_ranking_never_modifies_the_catalog(tmp_path):
    labels, predictions, _ = _corrupted("spurious")
    db = make_catalog(tmp_path, labels, predictions)
    before = hashlib.sha256(db.read_bytes()).hexdigest(), os.stat(db).st_mtime_ns
    rank_label_errors(db, MODEL)
    os.chmod(db, 0o444)  # and it works on a file nobody may write
    try:
        assert rank_label_errors(db, MODEL)[0].boxes[0].kind == "spurious"
    finally:
        os.chmod(db, 0o644)
    assert (hashlib.sha256(db.read_bytes()).hexdigest(), os.stat(db).st_mtime_ns) == before


def test_a_catalog_without_what_is_needed_says_what_to_run(tmp_path):
    labels = _objects(4)
    db = make_catalog(tmp_path / "a", labels, _good_predictions(labels))
    with pytest.raises(ValueError, match=r"none for 'yolo:other.pt'.*clusterlens catalog build"):
        rank_label_errors(db, "yolo:other.pt")
    unlabelled = make_catalog(tmp_path / "b", labels, _good_predictions(labels), with_labels=False)
    with pytest.raises(ValueError, match="no labelled images.*--labels DIR"):
        rank_label_errors(unlabelled, MODEL)
    with CatalogStore(db) as store:
        store.connection.execute("DELETE FROM losses")
    with pytest.raises(ValueError, match="no losses of 'yolo:test.pt'.*rebuild"):
        rank_label_errors(db, MODEL)
    with pytest.raises(FileNotFoundError):
        rank_label_errors(tmp_path / "nothing.db", MODEL)


def test_an_embedding_model_is_named_as_such(tmp_path):
    labels = _objects(3)
    db = make_catalog(tmp_path, labels, _good_predictions(labels))
    with CatalogStore(db) as store:
        run = store.start_run("open_clip:tiny", "embedding", {}, {})
        ids = sorted(store.image_ids([Path(p) for p in store.image_states()]).values())
        store.write_batch("open_clip:tiny", run, [ImageRecord(ids[0], np.ones(4, np.float32))])
    with pytest.raises(ValueError, match="open_clip:tiny is an embedding model"):
        rank_label_errors(db, "open_clip:tiny")


def test_the_ranking_with_evidence_is_the_ranking_and_what_it_read(tmp_path):
    labels, predictions, _ = _corrupted("missing")
    db = make_catalog(tmp_path, labels, predictions)
    ranking = rank_label_errors_with_evidence(db, MODEL, top=3)
    assert ranking.issues == rank_label_errors(db, MODEL, top=3)
    with CatalogStore(db, readonly=True) as store:
        images = load_images(store, MODEL)
        evidence = loss_evidence(store, MODEL, [image.image_id for image in images])
    # every labelled image, not only the top 3: their neighbours lie outside it
    assert sorted(ranking.images) == [image.image_id for image in images]
    assert ranking.evidence == evidence and len(ranking.evidence) == 12
    first = ranking.issues[0]
    assert ranking.images[first.image_id].path == first.path
    with pytest.raises(ValueError, match="top must be a positive number"):
        rank_label_errors_with_evidence(db, MODEL, top=0)


def test_fewer_images_than_neighbours_compare_with_all_the_others(tmp_path):
    labels, predictions, _ = _corrupted("missing")
    db = make_catalog(tmp_path, labels[:3], predictions[:3])
    ranking = rank_label_errors_with_evidence(db, MODEL)
    assert len(ranking.issues) == 3 and NEIGHBOURS > 2
    for image_id, evidence in ranking.evidence.items():
        assert sorted(evidence.neighbours) == sorted(set(ranking.images) - {image_id})
        assert all(np.isfinite(z) for z in evidence.z_global.values())


def test_box_iou():
    a = np.array([[0, 0, 10, 10], [0, 0, 5, 10]], float)
    np.testing.assert_allclose(box_iou(a, a[:1]), [[1.0], [0.5]])


REAL = Path(os.environ.get("CLUSTERLENS_DATA", "/work/shared/data"))


@pytest.mark.skipif(
    not (REAL / "camvid").is_dir(), reason=f"CamVid not present under {REAL} (CLUSTERLENS_DATA)"
)
def test_real_camvid_labels_with_an_oracle_detector(tmp_path):
    """Instances of real CamVid val maps; the 'detector' sees exactly the true boxes; one
    image per kind corrupted -- those four images rank first, each with its kind."""
    from clusterlens.catalog.camvid_instances import label_map_instances
    from clusterlens.evaluate.camvid import list_pairs, load_label

    pairs = list_pairs("val", REAL)[::10][:10]
    labels = []
    for _, label_path in pairs:
        label = load_label(label_path)
        objects = [(i.class_id, tuple(float(v) for v in i.box)) for i in label_map_instances(label)]
        labels.append([(c % 3, box) for c, box in objects if (box[2] - box[0]) >= 12][:6])
    truth = [list(objects) for objects in labels]
    predictions = [[(c, box, 0.9) for c, box in objects] for objects in truth]
    corrupted = {}
    order = [i for i in range(10) if len(labels[i]) >= 2][:4]
    assert len(order) == 4, "fewer than 4 of the chosen val images have 2 objects"
    for kind, index in zip(
        ("missing", "spurious", "wrong_class", "badly_placed"), order, strict=True
    ):
        c, box = labels[index][0]
        if kind == "missing":
            labels[index] = labels[index][1:]
        elif kind == "spurious":
            labels[index].append((c, (2.0, 2.0, 40.0, 40.0)))
        elif kind == "wrong_class":
            labels[index][0] = ((c + 1) % 3, box)
        else:
            shift = 0.6 * (box[2] - box[0])
            labels[index][0] = (c, (box[0] + shift, box[1], box[2] + shift, box[3]))
        corrupted[index] = kind
    db = make_catalog(tmp_path, labels, predictions, size=label.shape[::-1])
    issues = rank_label_errors(db, MODEL, loss_weight=0.0)
    top = {int(Path(i.path).stem[2:]): i.boxes[0].kind for i in issues[: len(corrupted)]}
    assert top == corrupted


def test_contact_sheet_draws_the_candidates_small(tmp_path):
    from PIL import Image

    from clusterlens.catalog.label_errors import load_images
    from clusterlens.viz.label_issues import save_label_issue_sheet

    labels, predictions, _ = _corrupted("badly_placed")
    db = make_catalog(tmp_path, labels, predictions)
    rng = np.random.default_rng(0)
    for index in range(12):
        pixels = rng.integers(0, 255, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(tmp_path / f"im{index:02d}.png")
    issues = rank_label_errors(db, MODEL, top=3)
    with CatalogStore(db, readonly=True) as store:
        images = {image.image_id: image for image in load_images(store, MODEL)}
    out = save_label_issue_sheet(issues, tmp_path / "sheet.png", images=images, columns=2)
    with Image.open(out) as sheet:
        assert sheet.mode == "P" and sheet.width > 400  # a palette PNG, two panels wide
    assert out.stat().st_size < 400_000
    with pytest.raises(ValueError, match="no label issues"):
        save_label_issue_sheet([], tmp_path / "empty.png")


def test_a_missing_object_in_a_crowd_is_still_missing(tmp_path):
    """The dropped pedestrian's box overlaps its neighbours' labels (IoU >= 0.1), but
    those are matched by their own predictions: it is still reported missing."""
    crowd = [(1, (20, 20, 40, 80)), (1, (32, 20, 52, 80)), (1, (44, 20, 64, 80))]
    labels = [list(crowd) for _ in range(12)]
    predictions = _good_predictions(labels)
    labels[3] = [crowd[0], crowd[2]]  # the middle one dropped
    db = make_catalog(tmp_path, labels, predictions)
    first = rank_label_errors(db, MODEL)[0]
    assert first.path.endswith("im03.png")
    assert [(b.kind, b.prediction_rank) for b in first.boxes] == [("missing", 1)]
    assert "match other predictions" in first.boxes[0].reason


def test_a_usual_confusion_counts_less_than_a_rare_one(tmp_path):
    """The model calls every sign a person: one more such call is weak evidence, while
    a single car called a person (never seen otherwise) stays a strong one."""
    labels = _objects()
    predictions = [
        [(1 if c == 2 else c, box, conf) for c, box, conf in image]
        for image in _good_predictions(labels)
    ]
    car = next(i for i in range(12) if any(c == 0 for c, _ in labels[i]))
    k = next(k for k, (c, _) in enumerate(labels[car]) if c == 0)
    predictions[car][k] = (1, predictions[car][k][1], 0.9)
    db = make_catalog(tmp_path, labels, predictions)
    issues = rank_label_errors(db, MODEL, loss_weight=0.0)  # box scores only
    assert issues[0].path.endswith(f"im{car:02d}.png") and issues[0].boxes[0].kind == "wrong_class"
    assert issues[0].boxes[0].class_name == "car" and issues[0].boxes[0].score > 0.7
    signs = [b.score for i in issues[1:] for b in i.boxes if b.class_name == "sign"]
    assert signs and max(signs) < 0.15 and "it says person" in issues[1].boxes[0].reason
