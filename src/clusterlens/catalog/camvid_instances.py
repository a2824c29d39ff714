"""Derived instance labels: CamVid label maps -> an ultralytics YOLO *segment* data set.

CamVid (SegNet release) has class maps, no instance ids. Each connected component
(8-connectivity) of a thing class -- Car, Pedestrian, Bicyclist, SignSymbol, Pole --
becomes one instance, written as a YOLO polygon label line. Two limits follow from the
source and are not fixed here: touching objects of one class (a row of parked cars)
become one instance, and an object cut in two by an occluder (a car behind a pole)
becomes two.

The output folder holds ``images/<split>/*.png`` (symbolic links to the CamVid files:
the data is never copied), ``labels/<split>/*.txt``, ``data.yaml`` for ultralytics and
``manifest.json`` (settings and counts; written last, so an interrupted run is redone).

Example:
    >>> import numpy as np
    >>> label = np.full((20, 30), 3, np.uint8)  # Road everywhere
    >>> label[2:6, 4:12] = 8  # one Car, 8 x 4 pixels
    >>> [(i.class_name, i.box, i.area) for i in label_map_instances(label, min_area=1)]
    [('Car', (4, 2, 12, 6), 32)]
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
from skimage.measure import find_contours

from clusterlens.evaluate.camvid import CLASS_NAMES, camvid_dir, list_pairs, load_label

#: Thing classes, in YOLO class-id order (0 = Car ... 4 = Pole).
INSTANCE_CLASSES: tuple[str, ...] = ("Car", "Pedestrian", "Bicyclist", "SignSymbol", "Pole")
#: Components smaller than this many pixels are dropped (see ``derive_camvid_instances``).
DEFAULT_MIN_AREA = 40
MANIFEST = "manifest.json"
_FORMAT_VERSION = 1


@dataclass(frozen=True)
class Instance:
    """One connected component of a thing class.

    Attributes:
        class_name: CamVid class name (``"Car"`` ...).
        class_id: index in the chosen class list (the YOLO class id).
        area: pixel count of the component.
        box: ``(x1, y1, x2, y2)`` in pixel-edge coordinates: the component covers columns
            ``x1 .. x2 - 1`` and rows ``y1 .. y2 - 1``.
        polygon: ``(N, 2)`` float ``(x, y)`` points, pixel-edge coordinates, tracing the
            component's outer boundary (holes are filled); its extremes equal ``box``.
    """

    class_name: str
    class_id: int
    area: int
    box: tuple[int, int, int, int]
    polygon: npt.NDArray[np.float64] = field(repr=False, compare=False)


def check_classes(classes: tuple[str, ...] | list[str] | None) -> tuple[str, ...]:
    """Return the chosen classes in the canonical order, or explain what is accepted."""
    if classes is None:
        return INSTANCE_CLASSES
    unknown = [name for name in classes if name not in INSTANCE_CLASSES]
    if unknown or not classes:
        raise ValueError(
            f"unknown instance classes {unknown or '(none given)'}; accepted: "
            f"{', '.join(INSTANCE_CLASSES)}"
        )
    return tuple(name for name in INSTANCE_CLASSES if name in classes)


def label_map_instances(
    label: npt.NDArray[np.integer],
    classes: tuple[str, ...] | list[str] | None = None,
    min_area: int = DEFAULT_MIN_AREA,
    tolerance: float = 0.25,
) -> list[Instance]:
    """Split a CamVid label map into instances, one per connected component.

    Args:
        label: ``(H, W)`` map of CamVid class indices (0..10, 11 = unlabelled).
        classes: thing classes to keep (default: all of :data:`INSTANCE_CLASSES`).
        min_area: components with fewer pixels are dropped.
        tolerance: Douglas-Peucker tolerance in pixels for simplifying the boundary.
            0.25 collapses straight runs but keeps half-pixel features (at 0.5 a
            1-pixel-wide pole collapses to half its area). The extreme points are
            always kept, so the box stays exact.

    Returns:
        Instances sorted by class id, then by position (top to bottom, left to right).
    """
    label = np.asarray(label)
    if label.ndim != 2 or label.size == 0:
        raise ValueError(f"a label map must be a non-empty (H, W) array, got shape {label.shape}")
    if min_area < 1:
        raise ValueError(f"min_area must be at least 1 pixel, got {min_area}")
    instances = []
    for class_id, name, components, stats, k in _components(label, classes, min_area):
        x, y, w, h, area = (int(v) for v in stats[k])
        crop = components[y : y + h, x : x + w] == k
        polygon = _outline(crop, tolerance) + (x, y)
        instances.append(Instance(name, class_id, area, (x, y, x + w, y + h), polygon))
    return instances


def _components(label, classes, min_area):
    """Yield ``(class id, name, component map, stats, k)`` for each component kept."""
    for class_id, name in enumerate(check_classes(classes)):
        mask = (label == CLASS_NAMES.index(name)).astype(np.uint8)
        count, components, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        for k in sorted(range(1, count), key=lambda k: (stats[k, 1], stats[k, 0])):
            if stats[k, cv2.CC_STAT_AREA] >= min_area:
                yield class_id, name, components, stats, k


def count_small_components(
    label: npt.NDArray[np.integer], classes: tuple[str, ...] | list[str] | None, min_area: int
) -> dict[str, int]:
    """Components of each class under ``min_area`` pixels (what label_map_instances drops)."""
    counts = {}
    for name in check_classes(classes):
        mask = (np.asarray(label) == CLASS_NAMES.index(name)).astype(np.uint8)
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
        counts[name] = int((stats[1:, cv2.CC_STAT_AREA] < min_area).sum())
    return counts


def _outline(mask: npt.NDArray[np.bool_], tolerance: float) -> npt.NDArray[np.float64]:
    """Outer boundary of one 8-connected component, in pixel-edge coordinates of ``mask``.

    Marching squares at level 0.5 runs half-way between pixel centres, i.e. along pixel
    edges, so a 1-pixel-wide pole still gets a polygon 1 pixel wide (tracing pixel
    centres would give it zero width). ``fully_connected="high"`` matches 8-connectivity.
    """
    padded = np.pad(mask, 1).astype(np.float32)
    contours = find_contours(padded, 0.5, fully_connected="high")
    # the outer boundary encloses every hole's boundary: it has the widest extent
    outer = max(contours, key=lambda c: np.ptp(c[:, 0]) + np.ptp(c[:, 1]))
    points = outer[:-1, ::-1] - 0.5  # (row, col) -> (x, y); padding (1) minus half a pixel
    kept = _simplify(points, tolerance)
    return points[kept]


def _simplify(points: npt.NDArray[np.float64], tolerance: float) -> npt.NDArray[np.intp]:
    """Indices of the Douglas-Peucker points plus the four extremes, in boundary order."""
    # OpenCV's Douglas-Peucker (skimage's is pure Python, 10x slower on CamVid);
    # the points are multiples of 0.5, exact in float32, so they map back to indices
    simple = cv2.approxPolyDP(points.astype(np.float32)[:, None], tolerance, True)[:, 0]
    lookup = {tuple(p): i for i, p in enumerate(points)}
    kept = {lookup[tuple(p)] for p in simple if tuple(p) in lookup}
    kept |= {int(np.argmin(points[:, 0])), int(np.argmax(points[:, 0]))}
    kept |= {int(np.argmin(points[:, 1])), int(np.argmax(points[:, 1]))}
    return np.array(sorted(kept), dtype=np.intp)


def yolo_line(instance: Instance, width: int, height: int) -> str:
    """The instance as a YOLO segment label line: ``class x1 y1 x2 y2 ...`` in 0..1."""
    normalised = (instance.polygon / (width, height)).clip(0.0, 1.0).ravel()
    return f"{instance.class_id} " + " ".join(f"{value:.6f}" for value in normalised)


@dataclass
class InstanceReport:
    """What :func:`derive_camvid_instances` wrote (or found already written).

    Attributes:
        out: the data set folder; ``out / "data.yaml"`` is what ultralytics reads.
        classes: class names in YOLO id order.
        min_area: the area threshold used.
        images: split -> number of images.
        instances: split -> class name -> instances kept.
        dropped: split -> class name -> components dropped as smaller than ``min_area``.
        reused: True when a matching data set was already there and nothing was written.
    """

    out: Path
    classes: tuple[str, ...]
    min_area: int
    images: dict[str, int]
    instances: dict[str, dict[str, int]]
    dropped: dict[str, dict[str, int]]
    reused: bool = False

    @property
    def data_yaml(self) -> Path:
        return self.out / "data.yaml"

    def to_json(self) -> dict:
        return {
            "out": str(self.out),
            "classes": list(self.classes),
            "min_area": self.min_area,
            "images": self.images,
            "instances": self.instances,
            "dropped": self.dropped,
            "reused": self.reused,
        }


def derive_camvid_instances(
    out: str | os.PathLike,
    data: str | os.PathLike | None = None,
    classes: tuple[str, ...] | list[str] | None = None,
    splits: tuple[str, ...] | list[str] = ("train", "val"),
    min_area: int = DEFAULT_MIN_AREA,
    overwrite: bool = False,
) -> InstanceReport:
    """Write the YOLO segment data set derived from CamVid into ``out``.

    The default ``min_area`` (40 pixels, about 6 x 6 at CamVid's 480 x 360) drops the
    specks left by annotation noise and by occluders cutting objects into slivers;
    40 pixels is under a tenth of an 8 x 8 cell of the detector's finest stride at
    imgsz 640, so nothing smaller could be found anyway. A thin pole 3 pixels wide and
    14 tall (42) is kept.

    Args:
        out: output folder (created). A folder holding anything but a data set written
            by this function is refused, never overwritten.
        data: the ``camvid`` folder or its parent (default: the source of the data set
            already in ``out``, else ``$CLUSTERLENS_DATA``, then ``../shared/data``).
        classes: thing classes to keep (default: all five).
        splits: CamVid splits to write (``train``, ``val``, ``test``).
        min_area: components with fewer pixels are dropped.
        overwrite: rewrite even when a data set with the same settings is there.

    Returns:
        The counts per split and class; ``reused`` when nothing had to be written.

    Raises:
        FileNotFoundError: no CamVid data where it was looked for (the message says where).
        ValueError: bad classes, splits or min_area, or ``out`` is not ours to write.
    """
    out = Path(out).absolute()
    chosen = check_classes(classes)
    splits = _check_splits(splits)
    if min_area < 1:
        raise ValueError(f"min_area must be at least 1 pixel, got {min_area}")
    existing = _read_manifest(out)
    if data is None and existing is not None:
        # the data set's own source, not whatever $CLUSTERLENS_DATA says today: a rerun
        # without --data must not silently relabel a folder derived from another copy
        data = existing["settings"]["source"]
    source = camvid_dir(data).absolute()
    pairs = {split: list_pairs(split, source) for split in splits}
    settings = {
        "format": _FORMAT_VERSION,
        "source": str(source),
        "classes": list(chosen),
        "splits": list(splits),
        "min_area": min_area,
    }
    if existing is not None and existing["settings"] == settings and not overwrite:
        return _report(out, existing, reused=True)
    _prepare_folder(out, existing is not None)
    counts = {
        split: _write_split(out, split, items, chosen, min_area) for split, items in pairs.items()
    }
    _write_data_yaml(out, chosen, splits)
    manifest = {"settings": settings, "counts": counts}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return _report(out, manifest, reused=False)


def _check_splits(splits: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    if isinstance(splits, str) or not splits:
        raise ValueError(
            f"splits must be a non-empty list such as ['train', 'val'], got {splits!r}"
        )
    unknown = [split for split in splits if split not in ("train", "val", "test")]
    if unknown:
        raise ValueError(f"unknown CamVid splits {unknown}; accepted: train, val, test")
    return tuple(dict.fromkeys(splits))


def _read_manifest(out: Path) -> dict | None:
    try:
        manifest = json.loads((out / MANIFEST).read_text())
    except (OSError, json.JSONDecodeError):  # missing, or ``out`` is a file
        return None
    return manifest if isinstance(manifest, dict) and "settings" in manifest else None


def _prepare_folder(out: Path, ours: bool) -> None:
    """Empty ``images/`` and ``labels/`` of our own data set; refuse anyone else's folder."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"{out} is a file; give a folder for the derived data set")
    leftovers = {path.name for path in out.iterdir()} if out.is_dir() else set()
    ours = ours or (leftovers <= {"images", "labels", "data.yaml"} and _only_symlinks(out))
    if leftovers and not ours:
        raise ValueError(
            f"{out} is not empty and holds no {MANIFEST} from an earlier derivation; "
            "give an empty or new folder (nothing is overwritten)"
        )
    for sub in ("images", "labels"):
        shutil.rmtree(out / sub, ignore_errors=True)
    (out / MANIFEST).unlink(missing_ok=True)
    out.mkdir(parents=True, exist_ok=True)


def _only_symlinks(out: Path) -> bool:
    """A run interrupted before its manifest left only links and label files: ours too."""
    images = out / "images"
    return not images.exists() or all(p.is_symlink() or p.is_dir() for p in images.rglob("*"))


def _write_split(
    out: Path, split: str, pairs: list[tuple[Path, Path]], classes: tuple[str, ...], min_area: int
) -> dict[str, dict[str, int]]:
    """Link the images of one split and write their label files; return the counts."""
    image_dir, label_dir = out / "images" / split, out / "labels" / split
    image_dir.mkdir(parents=True)
    label_dir.mkdir(parents=True)
    kept = dict.fromkeys(classes, 0)
    dropped = dict.fromkeys(classes, 0)
    for image_path, label_path in pairs:
        label = load_label(label_path)
        height, width = label.shape
        lines = []
        for instance in label_map_instances(label, classes, min_area=min_area):
            kept[instance.class_name] += 1
            lines.append(yolo_line(instance, width, height))
        for name, count in count_small_components(label, classes, min_area).items():
            dropped[name] += count
        # an image with no instance gets an empty file: a labelled negative, not "unlabelled"
        (label_dir / f"{image_path.stem}.txt").write_text("".join(f"{line}\n" for line in lines))
        (image_dir / image_path.name).symlink_to(image_path.absolute())
    return {"images": len(pairs), "instances": kept, "dropped": dropped}


def _write_data_yaml(out: Path, classes: tuple[str, ...], splits: tuple[str, ...]) -> None:
    lines = [f"path: {json.dumps(str(out))}"]
    for split in splits:
        lines.append(f"{split}: images/{split}")
    lines.append("names:")
    lines += [f"  {index}: {name}" for index, name in enumerate(classes)]
    (out / "data.yaml").write_text("\n".join(lines) + "\n")


def _report(out: Path, manifest: dict, reused: bool) -> InstanceReport:
    settings, counts = manifest["settings"], manifest["counts"]
    return InstanceReport(
        out=out,
        classes=tuple(settings["classes"]),
        min_area=settings["min_area"],
        images={split: c["images"] for split, c in counts.items()},
        instances={split: c["instances"] for split, c in counts.items()},
        dropped={split: c["dropped"] for split, c in counts.items()},
        reused=reused,
    )
