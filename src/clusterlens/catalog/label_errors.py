"""Label-error candidates from a catalog: which label files to look at first, and why.

A YOLO model's stored predictions are compared with each image's label file
(``images.label_path``), box by box, with box IoU:

- ``missing`` -- a confident prediction that no label accounts for: it covers no label
  (IoU < :data:`GOOD_IOU`), is not the best match of a label it touches, and does not
  lie inside a label of its own class (a merged instance, e.g. a row of parked cars
  labelled as one);
- ``spurious`` -- a label that no prediction supports; scaled by how often the model
  finds labels of that class and size (whole or cut by the image border) elsewhere in
  the data set (a missed 4-pixel pole is no surprise, a missed car is);
- ``wrong_class`` -- a confident prediction of another class covers the label
  (IoU >= :data:`GOOD_IOU`) while no prediction of the label's class does;
- ``badly_placed`` -- the best prediction of the label's class overlaps it only partly
  (:data:`TOUCH_IOU` <= IoU < :data:`GOOD_IOU`) and is not the match of another label.

Each label gets at most one kind (its highest score); scores are in 0..1. An image's
score is its best box score combined with loss evidence: the robust
z-score (median / MAD) of its per-image loss components (box, cls, seg) against the
data set *and* against its nearest neighbours by the model's embedding -- an image
whose loss is high while images that look like it are explained well is more likely
mislabelled than one that is simply hard.

The catalog is only read (``CatalogStore(path, readonly=True)``), never written.

Example:
    >>> from clusterlens.catalog.label_errors import rank_label_errors
    >>> issues = rank_label_errors("catalog.db", "yolo:/w/best.pt", top=20)  # doctest: +SKIP
    >>> issues[0].boxes[0].kind, issues[0].reason  # doctest: +SKIP
    ('missing', 'best: missing Pedestrian 0.81; 3 candidate boxes (missing 1, spurious 2); ...')
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.catalog.dataset import read_labels
from clusterlens.catalog.statistics import nearest_neighbours, robust_z
from clusterlens.catalog.store import CatalogStore

KINDS = ("missing", "spurious", "wrong_class", "badly_placed")
#: A prediction at this IoU or more covers a label (the usual detection match).
GOOD_IOU = 0.5
#: Below this IoU a prediction does not touch a label at all.
TOUCH_IOU = 0.1
#: A prediction with this share of its area inside a label of its class is part of it.
INSIDE_SHARE = 0.7
#: Nearest images (by the model's embedding) a loss is compared with.
NEIGHBOURS = 5
#: Loss components used as evidence (``dfl`` moves with ``box``).
EVIDENCE_COMPONENTS = ("box", "cls", "seg")
#: Which loss component each kind of error drives up.
KIND_COMPONENT = {
    "missing": "cls",
    "spurious": "cls",
    "wrong_class": "cls",
    "badly_placed": "box",
}
#: Size bins (square root of the box area, pixels) of the detectability table.
SIZE_EDGES = (12.0, 24.0, 48.0)
#: A label this close to the image's edge (pixels) is cut by it.
BORDER_PX = 2.0
# Defaults chosen on CamVid *train* with injected corruption (benchmarks/catalog_issues.py,
# detector best.pt of the 50-epoch run, 5 seeds); never on val, which the benchmark reports.
DEFAULT_MIN_CONFIDENCE = 0.1
#: Weight of the loss evidence in an image's score (0: boxes only).
DEFAULT_LOSS_WEIGHT = 0.5
#: Robust z-scores up to this are ordinary variation: no loss evidence.
DEFAULT_Z_FLOOR = 1.0
#: A robust z-score of z_floor + Z_SCALE gives loss evidence 1 - 1/e.
Z_SCALE = 4.0


@dataclass(frozen=True)
class BoxIssue:
    """One label box (or missing one) that looks wrong.

    Attributes:
        kind: ``"missing"``, ``"spurious"``, ``"wrong_class"`` or ``"badly_placed"``.
        score: 0..1, higher = more likely a label error.
        label_index: the object's index in the label file (its n-th non-empty line,
            from 0); None for ``missing``.
        prediction_rank: ``predictions.rank`` of the prediction involved; None for
            ``spurious``.
        class_name: the label's class (the predicted class for ``missing``).
        box: pixels ``x1 y1 x2 y2`` of the label (of the prediction for ``missing``).
        reason: one line a user reads.
    """

    kind: str
    score: float
    label_index: int | None
    prediction_rank: int | None
    class_name: str
    box: tuple[float, float, float, float]
    reason: str


@dataclass(frozen=True)
class ImageLabelIssue:
    """An image whose labels look wrong, with its candidate boxes (best first)."""

    image_id: int
    path: str
    score: float
    reason: str
    boxes: tuple[BoxIssue, ...]

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["boxes"] = [{**asdict(b), "box": list(b.box)} for b in self.boxes]
        return out


@dataclass
class LabelledImage:
    """What the ranking needs of one labelled image."""

    image_id: int
    path: str
    width: int
    height: int
    label_classes: np.ndarray  # (L,) int
    label_boxes: np.ndarray  # (L, 4) pixel xyxy
    pred_ranks: np.ndarray  # (P,) int
    pred_boxes: np.ndarray  # (P, 4) pixel xyxy
    pred_conf: np.ndarray  # (P,) float
    pred_classes: np.ndarray  # (P,) int


@dataclass(frozen=True)
class LossEvidence:
    """One image's loss components against the data set and its neighbours."""

    values: dict[str, float]
    z_global: dict[str, float]
    z_neighbours: dict[str, float]
    neighbours: tuple[int, ...]
    #: component -> the neighbours' values, in the order of ``neighbours``
    neighbour_values: dict[str, tuple[float, ...]]

    def z(self, component: str) -> float:
        """The smaller of the two z-scores: high only when both agree."""
        return min(self.z_global.get(component, 0.0), self.z_neighbours.get(component, 0.0))

    def strength(self, floor: float = 3.0) -> float:
        """0..1: how strongly the most-off component says the labels are wrong."""
        worst = max((self.z(c) for c in self.values), default=0.0)
        return float(1.0 - np.exp(-max(worst - floor, 0.0) / Z_SCALE))


# --------------------------------------------------------------------------- reading


def check_catalog_model(store: CatalogStore, model: str) -> None:
    """Refuse a catalog that cannot give label errors for ``model``, saying what to run.

    Raises:
        ValueError: no YOLO build of ``model``, no labelled image, or no predictions.
    """
    db = store.path
    build = f"'clusterlens catalog build DATA --model {model} --db {db}'"
    yolo = store.yolo_models()
    if model not in yolo:
        other = store.models()
        detail = f"YOLO models here: {yolo}" if yolo else "it holds no YOLO model's rows"
        if model in other:
            detail = f"{model} is an embedding model: it stores no predictions"
        raise ValueError(
            f"label errors need a YOLO model's predictions, and catalog {db} has none for "
            f"{model!r} ({detail}); make them with {build} (a YOLO data set: images/ + labels/)"
        )
    labelled = store.query("SELECT COUNT(*) FROM images WHERE label_path IS NOT NULL")[0][0]
    if labelled == 0:
        raise ValueError(
            f"catalog {db} has no labelled images (images.label_path is NULL everywhere): "
            f"label errors compare predictions with labels; rebuild with {build} on a YOLO "
            "data set (images/ + labels/), or add --labels DIR"
        )
    losses = store.query("SELECT COUNT(*) FROM losses WHERE model = ?", (model,))[0][0]
    if losses == 0:
        raise ValueError(
            f"catalog {db} has no losses of {model!r} (the images were registered without "
            f"labels when it was built); rebuild with {build} after the labels are in place"
        )


def class_names(store: CatalogStore, model: str) -> dict[int, str]:
    """Class id -> name: from the stored predictions, completed by the data set's
    ``data.yaml`` (``names``) when one lies up to three folders above a label file --
    a class the model never predicts is still named. Others read ``class N``."""
    names: dict[int, str] = {}
    first = store.query("SELECT label_path FROM images WHERE label_path IS NOT NULL LIMIT 1")
    for folder in Path(first[0][0]).parents[:3] if first else ():
        if (folder / "data.yaml").is_file():
            names.update(_yaml_names(folder / "data.yaml"))
            break
    rows = store.query(
        "SELECT DISTINCT class_id, class_name FROM predictions WHERE model = ?", (model,)
    )
    names.update({int(class_id): str(name) for class_id, name in rows})
    return names


def _yaml_names(path: Path) -> dict[int, str]:
    import yaml

    try:
        found = (yaml.safe_load(path.read_text()) or {}).get("names", {})
    except (yaml.YAMLError, OSError, AttributeError):
        return {}  # not ours to validate: names are a nicety
    if isinstance(found, list):
        found = dict(enumerate(found))
    return {int(k): str(v) for k, v in found.items()} if isinstance(found, dict) else {}


def _labels_in_pixels(label_path: Path, width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    labels = read_labels(label_path)
    xywh = labels.boxes.astype(np.float64) * [width, height, width, height]
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], axis=1)
    return labels.classes.astype(np.int64), xyxy.reshape(-1, 4)


def load_images(store: CatalogStore, model: str) -> list[LabelledImage]:
    """Every labelled image that ``model`` extracted, with its labels and predictions.

    An image whose label file no longer parses is skipped with a warning (``catalog
    validate`` reports it too).
    """
    rows = store.query(
        "SELECT i.id, i.path, i.width, i.height, i.label_path FROM images i "
        "JOIN embeddings e ON e.image_id = i.id AND e.model = ? "
        "WHERE i.label_path IS NOT NULL ORDER BY i.id",
        (model,),
    )
    predictions: dict[int, list[tuple]] = {}
    for row in store.query(
        "SELECT image_id, rank, x1, y1, x2, y2, confidence, class_id FROM predictions "
        "WHERE model = ? ORDER BY image_id, rank",
        (model,),
    ):
        predictions.setdefault(row[0], []).append(row[1:])
    images, skipped = [], []
    for image_id, path, width, height, label_path in rows:
        try:
            classes, boxes = _labels_in_pixels(Path(label_path), width, height)
        except (ValueError, OSError) as err:
            skipped.append(f"{path}: {err}")
            continue
        preds = np.array(predictions.get(image_id, []), dtype=np.float64).reshape(-1, 7)
        images.append(
            LabelledImage(
                image_id=int(image_id),
                path=str(path),
                width=int(width),
                height=int(height),
                label_classes=classes,
                label_boxes=boxes,
                pred_ranks=preds[:, 0].astype(np.int64),
                pred_boxes=preds[:, 1:5],
                pred_conf=preds[:, 5],
                pred_classes=preds[:, 6].astype(np.int64),
            )
        )
    if skipped:
        warnings.warn(
            f"{len(skipped)} image(s) skipped, their label files do not parse: {skipped[0]}",
            stacklevel=2,
        )
    return images


# --------------------------------------------------------------------------- geometry


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(len(a), len(b)) IoU of pixel ``x1 y1 x2 y2`` boxes."""
    inter = _intersection(a, b)
    area_a, area_b = _area(a), _area(b)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0)


def _intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    return np.clip(high - low, 0, None).prod(-1)


def _area(boxes: np.ndarray) -> np.ndarray:
    return np.clip(boxes[:, 2:] - boxes[:, :2], 0, None).prod(-1)


def size_bin(boxes: np.ndarray) -> np.ndarray:
    """Index into :data:`SIZE_EDGES` of each box's sqrt(area)."""
    return np.searchsorted(SIZE_EDGES, np.sqrt(_area(boxes)))


def label_kinds(image: LabelledImage) -> list[tuple[int, int, bool]]:
    """(class id, size bin, cut by the image border) of each label: the groups whose
    detection rates differ (a car cut by the frame is found less often than a whole one)."""
    boxes = image.label_boxes
    at_border = (boxes[:, :2] <= BORDER_PX).any(axis=1) | (
        boxes[:, 2:] >= [image.width - BORDER_PX, image.height - BORDER_PX]
    ).any(axis=1)
    return list(
        zip(
            image.label_classes.tolist(),
            size_bin(boxes).tolist(),
            at_border.tolist(),
            strict=True,
        )
    )


# --------------------------------------------------------------------------- evidence


def detectability(
    images: list[LabelledImage], min_confidence: float
) -> dict[tuple[int, int, bool], float]:
    """:func:`label_kinds` group -> share of such labels a confident same-class
    prediction covers, over the whole data set (Laplace-smoothed: an unseen group
    counts 0.5).

    This is what makes a spurious-looking label surprising or not: the model misses
    most thin poles, so an unsupported pole label is weak evidence; it finds most cars.
    """
    found: dict[tuple[int, int, bool], list[int]] = {}
    for image in images:
        iou = box_iou(image.label_boxes, image.pred_boxes)
        same = image.label_classes[:, None] == image.pred_classes[None, :]
        confident = image.pred_conf[None, :] >= min_confidence
        hit = ((iou >= GOOD_IOU) & same & confident).any(axis=1)
        for key, was_hit in zip(label_kinds(image), hit.tolist(), strict=True):
            counts = found.setdefault(key, [0, 0])
            counts[0] += int(was_hit)
            counts[1] += 1
    return {key: (hits + 1) / (total + 2) for key, (hits, total) in found.items()}


def confusion(images: list[LabelledImage], min_confidence: float) -> dict[tuple[int, int], float]:
    """(label class c, predicted class c') -> among the confident predictions that cover
    (IoU >= GOOD_IOU) labels of class c, the share of calls c' against calls c, over the
    whole data set: ``(n(c -> c') + 1) / (n(c -> c) + n(c -> c') + 2)``.

    A model that calls bicyclists pedestrians twice as often as bicyclists makes one
    more such call weak evidence of a wrong label; a car called a pole, when the model
    never does that, is strong evidence.
    """
    calls: dict[tuple[int, int], int] = {}
    for image in images:
        iou = box_iou(image.label_boxes, image.pred_boxes)
        hits = (iou >= GOOD_IOU) & (image.pred_conf[None, :] >= min_confidence)
        for index, label_class in enumerate(image.label_classes.tolist()):
            for predicted in set(image.pred_classes[hits[index]].tolist()):
                calls[(label_class, predicted)] = calls.get((label_class, predicted), 0) + 1
    classes = {c for pair in calls for c in pair} | {
        int(c) for image in images for c in image.label_classes
    }
    return {
        (c, other): (calls.get((c, other), 0) + 1)
        / (calls.get((c, c), 0) + calls.get((c, other), 0) + 2)
        for c in classes
        for other in classes
        if other != c
    }


@dataclass(frozen=True)
class DatasetRates:
    """What the model usually does on this data set: how often it finds labels of each
    group (:func:`detectability`) and confuses each pair of classes (:func:`confusion`)."""

    found: dict[tuple[int, int, bool], float]
    confused: dict[tuple[int, int], float]

    @classmethod
    def of(cls, images: list[LabelledImage], min_confidence: float) -> DatasetRates:
        return cls(detectability(images, min_confidence), confusion(images, min_confidence))


def loss_evidence(store: CatalogStore, model: str, image_ids: list[int]) -> dict[int, LossEvidence]:
    """Per image: its losses, z against the data set, z against its nearest images.

    The neighbour z is ``(x - median of the neighbours' x) / spread of the data set``:
    large when images that look alike (to the model) have much lower loss.
    """
    rows = {
        row[0]: row[1:]
        for row in store.query(
            "SELECT image_id, box, cls, seg FROM losses WHERE model = ?", (model,)
        )
    }
    ids = [i for i in image_ids if i in rows]
    if not ids:
        return {}
    table = np.array([rows[i] for i in ids], dtype=np.float64)  # NULL seg -> nan
    emb_ids, vectors = store.embeddings(model)
    position = {int(i): n for n, i in enumerate(emb_ids.tolist())}
    _, neighbours = nearest_neighbours(vectors[[position[i] for i in ids]], NEIGHBOURS)
    out = {}
    columns = {c: n for n, c in enumerate(EVIDENCE_COMPONENTS) if not np.isnan(table[:, n]).all()}
    z_global = {c: robust_z(table[:, n]) for c, n in columns.items()}
    for row, image_id in enumerate(ids):
        near = neighbours[row]
        # in the data set's spread units, like z_global: the same thresholds apply
        z_near = {c: float(z[row] - np.nanmedian(z[near])) for c, z in z_global.items()}
        out[image_id] = LossEvidence(
            values={c: float(table[row, n]) for c, n in columns.items()},
            z_global={c: float(z_global[c][row]) for c in columns},
            z_neighbours=z_near,
            neighbours=tuple(int(ids[j]) for j in near),
            neighbour_values={
                c: tuple(float(table[j, n]) for j in near) for c, n in columns.items()
            },
        )
    return out


# --------------------------------------------------------------------------- box issues


def _name(names: Mapping[int, str], class_id: int) -> str:
    return names.get(int(class_id), f"class {int(class_id)}")


def _box(values: np.ndarray) -> tuple[float, float, float, float]:
    return tuple(round(float(v), 1) for v in values)  # type: ignore[return-value]


def _loss_note(evidence: LossEvidence | None, kind: str) -> str:
    component = KIND_COMPONENT[kind]
    if evidence is None or component not in evidence.values:
        return ""
    return (
        f"; image {component} loss z {evidence.z_global[component]:+.1f} "
        f"(vs its neighbours {evidence.z_neighbours[component]:+.1f})"
    )


def missing_boxes(
    image: LabelledImage,
    iou: np.ndarray,
    names: Mapping[int, str],
    min_confidence: float,
    evidence: LossEvidence | None,
) -> list[BoxIssue]:
    """Confident predictions no label accounts for (one per object: overlaps merged).

    A prediction is accounted for when it covers a label (IoU >= GOOD_IOU), is the
    best match of a label it touches (then that label's own kinds apply), or lies
    inside a label of its class. In a crowd a missed pedestrian's box may touch its
    neighbours' labels: those are matched by their own predictions, so it still counts.
    """
    inside = _intersection(image.pred_boxes, image.label_boxes) / np.maximum(
        _area(image.pred_boxes)[:, None], 1e-12
    )
    same = image.pred_classes[:, None] == image.label_classes[None, :]
    part_of_label = ((inside >= INSIDE_SHARE) & same).any(axis=1)
    best = iou.max(axis=0) if len(iou) else np.zeros(len(image.pred_conf))
    claimed = np.zeros(len(image.pred_conf), dtype=bool)
    if iou.size:
        matched = iou.argmax(axis=1)
        claimed[matched[iou.max(axis=1) >= TOUCH_IOU]] = True
    taken: list[np.ndarray] = []
    issues = []
    for p in np.argsort(-image.pred_conf):
        conf = float(image.pred_conf[p])
        if conf < min_confidence or best[p] >= GOOD_IOU or claimed[p] or part_of_label[p]:
            continue
        box = image.pred_boxes[p]
        if taken and box_iou(box[None], np.stack(taken)).max() >= GOOD_IOU:
            continue  # the same unlabelled object seen twice (two classes)
        taken.append(box)
        name = _name(names, image.pred_classes[p])
        issues.append(
            BoxIssue(
                kind="missing",
                score=conf * (1.0 - float(best[p])),
                label_index=None,
                prediction_rank=int(image.pred_ranks[p]),
                class_name=name,
                box=_box(box),
                reason=(
                    f"{name} predicted at confidence {conf:.2f} (prediction "
                    f"{int(image.pred_ranks[p])}) but no label accounts for it ("
                    + (
                        "none touches it"
                        if best[p] < TOUCH_IOU
                        else f"the labels it overlaps, best IoU {best[p]:.2f}, match other "
                        "predictions"
                    )
                    + ")"
                    + _loss_note(evidence, "missing")
                ),
            )
        )
    return issues


def _label_candidates(
    image: LabelledImage,
    iou: np.ndarray,
    index: int,
    names: Mapping[int, str],
    min_confidence: float,
    rates: DatasetRates,
    group: tuple[int, int, bool],
) -> list[tuple[str, float, int | None, str]]:
    """(kind, score, prediction index, reason) of each kind label ``index`` could be."""
    found_rate, at_border = rates.found.get(group, 0.5), group[2]
    row = iou[index]
    label_class = int(image.label_classes[index])
    name = _name(names, label_class)
    same = image.pred_classes == label_class
    conf = image.pred_conf
    covering_same = np.where(same & (row >= GOOD_IOU), conf, 0.0)
    cover_same = float(covering_same.max(initial=0.0))
    out = []
    covering_other = np.where(~same & (row >= GOOD_IOU), conf, 0.0)
    if covering_other.max(initial=0.0) >= min_confidence:
        p = int(covering_other.argmax())
        other = _name(names, image.pred_classes[p])
        usual = rates.confused.get((label_class, int(image.pred_classes[p])), 0.5)
        score = float(conf[p]) * (1.0 - cover_same) * (1.0 - usual)
        out.append(
            (
                "wrong_class",
                score,
                p,
                f"labelled {name} but predicted {other} at confidence {conf[p]:.2f}, IoU "
                f"{row[p]:.2f} (best {name} prediction covering it: {cover_same:.2f}); where "
                f"the model confidently covers a {name} label, it says {other} {usual:.0%} of "
                "the time",
            )
        )
    # the label's own partial match, unless that prediction matches another label better
    partial = same & (row >= TOUCH_IOU) & (row < GOOD_IOU) & (conf >= min_confidence)
    partial &= row >= iou.max(axis=0) - 1e-9
    if partial.any() and cover_same < min_confidence:
        p = int(np.where(partial, conf, -1.0).argmax())
        score = float(conf[p]) * (1.0 - float(row[p]))
        out.append(
            (
                "badly_placed",
                score,
                p,
                f"the best {name} prediction (rank {int(image.pred_ranks[p])}, confidence "
                f"{conf[p]:.2f}) overlaps this label only partly: IoU {row[p]:.2f}",
            )
        )
    # full support: a prediction of any class at min_confidence covering the label; a
    # fainter or partial one supports it in proportion (weak models are unconfident)
    support = np.clip(conf / max(min_confidence, 1e-6), 0.0, 1.0) * np.clip(row / GOOD_IOU, 0, 1)
    if not out and cover_same < min_confidence:
        p = int(support.argmax()) if len(support) else None
        best = (
            f"best: {_name(names, image.pred_classes[p])} at IoU {row[p]:.2f}, confidence "
            f"{conf[p]:.2f}"
            if p is not None and row[p] > 0
            else "no prediction overlaps it"
        )
        score = (1.0 - float(support.max(initial=0.0))) * found_rate
        out.append(
            (
                "spurious",
                score,
                None,
                f"no prediction supports this {name} label ({best}); the model finds "
                f"{found_rate:.0%} of {name} labels of this size"
                + (" cut by the image border" if at_border else ""),
            )
        )
    return out


def label_boxes(
    image: LabelledImage,
    iou: np.ndarray,
    names: Mapping[int, str],
    min_confidence: float,
    rates: DatasetRates,
    evidence: LossEvidence | None,
) -> list[BoxIssue]:
    """The most likely kind of error of each label box (none when it looks right)."""
    groups = label_kinds(image)
    issues = []
    for index in range(len(image.label_classes)):
        candidates = _label_candidates(
            image, iou, index, names, min_confidence, rates, groups[index]
        )
        if not candidates:
            continue
        kind, score, p, reason = max(candidates, key=lambda c: c[1])
        if score <= 0:
            continue
        issues.append(
            BoxIssue(
                kind=kind,
                score=float(np.clip(score, 0.0, 1.0)),
                label_index=index,
                prediction_rank=None if p is None else int(image.pred_ranks[p]),
                class_name=_name(names, image.label_classes[index]),
                box=_box(image.label_boxes[index]),
                reason=reason + _loss_note(evidence, kind),
            )
        )
    return issues


# --------------------------------------------------------------------------- images


def image_score(
    boxes: tuple[BoxIssue, ...],
    evidence: LossEvidence | None,
    loss_weight: float,
    z_floor: float = DEFAULT_Z_FLOOR,
) -> float:
    """The best box score, raised by the loss evidence (weight ``loss_weight``).

    The maximum, not a noisy-or: an image with forty faint doubts (a weak model on a
    busy street) should not outrank one clear error.
    """
    box = max((b.score for b in boxes), default=0.0)
    loss = 0.0 if evidence is None else evidence.strength(z_floor)
    return float(1.0 - (1.0 - box) * (1.0 - loss_weight * loss))


def image_reason(boxes: tuple[BoxIssue, ...], evidence: LossEvidence | None) -> str:
    """One line: the best candidate, the count per kind, the most-off loss component
    against the data set and the nearest images (``boxes`` sorted best first)."""
    counts = {k: sum(b.kind == k for b in boxes) for k in KINDS}
    text = (
        f"best: {boxes[0].kind} {boxes[0].class_name} {boxes[0].score:.2f}; "
        f"{len(boxes)} candidate box{'es' if len(boxes) != 1 else ''} ("
        + ", ".join(f"{k} {n}" for k, n in counts.items() if n)
        + ")"
        if boxes
        else "no candidate box"
    )
    if evidence is None or not evidence.values:
        return text
    worst = max(evidence.values, key=evidence.z)
    near = ", ".join(
        f"#{i} {value:.2f}"
        for i, value in zip(evidence.neighbours, evidence.neighbour_values[worst], strict=True)
    )
    return (
        f"{text}; {worst} loss {evidence.values[worst]:.2f}, z {evidence.z_global[worst]:+.1f} "
        f"against the data set, {evidence.z_neighbours[worst]:+.1f} against its "
        f"{len(evidence.neighbours)} nearest images by embedding ({near})"
    )


@dataclass(frozen=True)
class LabelErrorRanking:
    """A ranking together with what it was computed from, so a caller that shows the
    evidence (the app's Problems view) need not read the catalog a second time.

    Attributes:
        issues: what :func:`rank_label_errors` returns: ranked images, best first.
        images: every labelled image the ranking read (not only the ``top``: an
            issue's neighbours may lie outside it), by image id.
        evidence: each image's loss evidence, by image id (absent: no loss row).
    """

    issues: list[ImageLabelIssue]
    images: dict[int, LabelledImage]
    evidence: dict[int, LossEvidence]


def rank_label_errors(
    store: CatalogStore | str | Path,
    model: str,
    *,
    top: int | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    loss_weight: float = DEFAULT_LOSS_WEIGHT,
    z_floor: float = DEFAULT_Z_FLOOR,
) -> list[ImageLabelIssue]:
    """Label-error candidates of the catalog's labelled images, best first.

    Args:
        store: an open :class:`CatalogStore` or the catalog's path (opened read-only).
        model: the YOLO model whose predictions and losses are used (``yolo:...``).
        top: keep only the ``top`` highest-scoring images (None: all).
        min_confidence: predictions below this confidence never raise ``missing``,
            ``wrong_class`` or ``badly_placed`` (they still count as support).
        loss_weight: 0..1, weight of the loss evidence in an image's score.
        z_floor: loss z-scores up to this are ordinary variation (no evidence).

    Returns:
        Every labelled image (``top`` of them), sorted by score, highest first; an
        image's boxes are sorted by score too. :func:`rank_label_errors_with_evidence`
        returns the same with the labels, predictions and loss evidence it used.

    Raises:
        ValueError: the catalog has no predictions, labels or losses of ``model``, or
            an argument is out of range.
    """
    return rank_label_errors_with_evidence(
        store,
        model,
        top=top,
        min_confidence=min_confidence,
        loss_weight=loss_weight,
        z_floor=z_floor,
    ).issues


def rank_label_errors_with_evidence(
    store: CatalogStore | str | Path,
    model: str,
    *,
    top: int | None = None,
    min_confidence: float = DEFAULT_MIN_CONFIDENCE,
    loss_weight: float = DEFAULT_LOSS_WEIGHT,
    z_floor: float = DEFAULT_Z_FLOOR,
) -> LabelErrorRanking:
    """:func:`rank_label_errors` (same arguments, same errors), returning the ranked
    issues with the labelled images and loss evidence they were computed from."""
    if not 0.0 <= min_confidence <= 1.0 or not 0.0 <= loss_weight <= 1.0:
        raise ValueError(
            f"min_confidence and loss_weight must be in 0..1, got {min_confidence}, {loss_weight}"
        )
    if top is not None and top < 1:
        raise ValueError(f"top must be a positive number of images, got {top}")
    if not isinstance(store, CatalogStore):
        with CatalogStore(store, readonly=True) as opened:
            return rank_label_errors_with_evidence(
                opened,
                model,
                top=top,
                min_confidence=min_confidence,
                loss_weight=loss_weight,
                z_floor=z_floor,
            )
    check_catalog_model(store, model)
    names = class_names(store, model)
    images = load_images(store, model)
    rates = DatasetRates.of(images, min_confidence)
    evidence = loss_evidence(store, model, [image.image_id for image in images])
    issues = [
        _image_issue(
            image, names, min_confidence, rates, evidence.get(image.image_id), loss_weight, z_floor
        )
        for image in images
    ]
    issues.sort(key=lambda issue: (-issue.score, issue.image_id))
    return LabelErrorRanking(
        issues=issues[:top] if top is not None else issues,
        images={image.image_id: image for image in images},
        evidence=evidence,
    )


def _image_issue(
    image: LabelledImage,
    names: Mapping[int, str],
    min_confidence: float,
    rates: DatasetRates,
    evidence: LossEvidence | None,
    loss_weight: float,
    z_floor: float,
) -> ImageLabelIssue:
    iou = box_iou(image.label_boxes, image.pred_boxes)
    boxes = missing_boxes(image, iou, names, min_confidence, evidence)
    boxes += label_boxes(image, iou, names, min_confidence, rates, evidence)
    ordered = tuple(sorted(boxes, key=lambda b: -b.score))
    return ImageLabelIssue(
        image_id=image.image_id,
        path=image.path,
        score=image_score(ordered, evidence, loss_weight, z_floor),
        reason=image_reason(ordered, evidence),
        boxes=ordered,
    )
