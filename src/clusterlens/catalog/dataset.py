"""Image folders and YOLO-format data sets: find the images, read their labels.

Two layouts are accepted:

- a YOLO data set: ``DATA_DIR/images/**`` with ``DATA_DIR/labels/**`` mirroring it
  (``images/train/a.jpg`` -> ``labels/train/a.txt``);
- any folder of images, with labels optionally in a separate ``--labels`` folder
  (``a.jpg`` -> ``LABELS/a.txt``, same relative path).

A label file holds one object per line, ``class x_center y_center width height``
(a box) or ``class x1 y1 x2 y2 x3 y3 ...`` (a polygon), all normalised to 0..1. An
image without a label file in a labelled data set has no objects (YOLO convention).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from clusterlens.image import load_image

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


class UnreadableImageError(ValueError):
    """The file has an image suffix but cannot be decoded."""


@dataclass
class LabelSet:
    """Ground-truth objects of one image, normalised to the image size (0..1).

    Attributes:
        classes: (n,) int64 class ids.
        boxes: (n, 4) float32 ``x_center, y_center, width, height``.
        polygons: one (k, 2) float32 array of ``x, y`` per object, or ``None`` for a
            box-only object.
    """

    classes: np.ndarray
    boxes: np.ndarray
    polygons: list[np.ndarray | None] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.classes)

    @classmethod
    def empty(cls) -> LabelSet:
        return cls(np.zeros(0, np.int64), np.zeros((0, 4), np.float32), [])


@dataclass
class ImageEntry:
    """An image file and where its labels are (``None``: the data set has no labels)."""

    path: Path
    label_path: Path | None


def scan_dataset(data_dir: str | Path, labels_dir: str | Path | None = None) -> list[ImageEntry]:
    """The images under ``data_dir`` (sorted) with their label files.

    Args:
        data_dir: a YOLO data set (``images/`` + ``labels/``) or a folder of images.
        labels_dir: folder of label files mirroring the image paths; default
            ``DATA_DIR/labels`` when ``DATA_DIR/images`` exists, else no labels.

    Raises:
        FileNotFoundError: ``data_dir`` or ``labels_dir`` does not exist.
        ValueError: no image files were found.
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    image_root = root / "images" if (root / "images").is_dir() else root
    if labels_dir is None and image_root != root and (root / "labels").is_dir():
        labels_dir = root / "labels"
    if labels_dir is not None and not Path(labels_dir).is_dir():
        raise FileNotFoundError(f"labels folder {labels_dir} does not exist")
    paths = sorted(
        path
        for path in image_root.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()
    )
    if not paths:
        raise ValueError(
            f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {image_root}; give a folder "
            "of images or a YOLO data set with images/ and labels/"
        )
    return [
        ImageEntry(
            path.resolve(),
            None
            if labels_dir is None
            else (Path(labels_dir) / path.relative_to(image_root)).with_suffix(".txt").resolve(),
        )
        for path in paths
    ]


def read_labels(label_path: Path | None) -> LabelSet | None:
    """Parse a YOLO label file; a missing file in a labelled set means no objects.

    Returns:
        ``None`` when ``label_path`` is ``None`` (unlabelled data set).

    Raises:
        ValueError: a malformed line (says which file and line, and the accepted forms).
    """
    if label_path is None:
        return None
    if not label_path.is_file():
        return LabelSet.empty()
    classes, boxes, polygons = [], [], []
    for number, line in enumerate(label_path.read_text().splitlines(), start=1):
        values = line.split()
        if not values:
            continue
        try:
            numbers = np.array(values[1:], dtype=np.float32)
            class_id = int(values[0])
        except ValueError as err:
            raise ValueError(f"{label_path}:{number}: not numbers: {line!r}") from err
        if not np.isfinite(numbers).all():  # float() reads 'nan' and 'inf' without complaint
            raise ValueError(
                f"{label_path}:{number}: coordinates must be finite numbers in 0..1: {line!r}"
            )
        if len(numbers) == 4:
            box, polygon = numbers, None
        elif len(numbers) >= 6 and len(numbers) % 2 == 0:
            polygon = numbers.reshape(-1, 2)
            low, high = polygon.min(0), polygon.max(0)
            box = np.concatenate([(low + high) / 2, high - low])
        else:
            raise ValueError(
                f"{label_path}:{number}: expected 'class x y w h' or 'class x1 y1 x2 y2 x3 y3 "
                f"...' (normalised 0..1), got {len(values)} values"
            )
        if class_id < 0 or (numbers < -0.01).any() or (numbers > 1.01).any():
            raise ValueError(
                f"{label_path}:{number}: class must be >= 0 and coordinates in 0..1: {line!r}"
            )
        classes.append(class_id)
        boxes.append(box)
        polygons.append(polygon)
    if not classes:
        return LabelSet.empty()
    return LabelSet(np.array(classes, np.int64), np.stack(boxes).astype(np.float32), polygons)


def open_image(path: Path) -> Image.Image:
    """``PIL.Image.open`` as Pillow ships it.

    Importing ultralytics replaces ``PIL.Image.open`` with a wrapper that, on a file
    Pillow cannot identify, tries to pip-install a HEIF plugin -- a network call in
    the middle of a build. The catalog reads with Pillow's own function instead.
    """
    patches = sys.modules.get("ultralytics.utils.patches")
    opener = getattr(patches, "_image_open", None) or Image.open
    return opener(path)


def load_rgb(path: Path) -> np.ndarray:
    """Decode ``path`` into a uint8 (H, W, 3) array.

    Modes are converted by :func:`clusterlens.image.load_image` (alpha composited onto
    white, 16-bit scaled by 1/65535), from a file opened with :func:`open_image`.

    Raises:
        UnreadableImageError: the file cannot be decoded.
    """
    try:
        with open_image(path) as image:
            image.load()
            rgb = load_image(image)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise UnreadableImageError(f"cannot decode image {path}: {err}") from err
    return (rgb * 255.0 + 0.5).astype(np.uint8)
