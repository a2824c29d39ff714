"""Semantic-segmentation data sets in their usual folder layouts, behind one interface.

:func:`load_seg_dataset` returns a :class:`SegDataset`: class names, the ignore
index, and ``(image, label)`` pairs (``(H, W, 3)`` float32 in ``[0, 1]`` and an
``(H, W)`` int64 map of class indices, ``ignore_index`` where unlabelled).

Layouts (``root`` is the folder named in each line, or its parent):

- ``camvid``: ``camvid/{split}/*.png`` + ``camvid/{split}annot/*.png`` (SegNet release,
  11 classes, 11 ignored) -- read by :mod:`clusterlens.evaluate.camvid`.
- ``voc``: ``VOCdevkit/VOC2012/JPEGImages/<id>.jpg`` + ``SegmentationClass/<id>.png``
  (palette PNG of indices, 21 classes with background, 255 ignored), ids from
  ``ImageSets/Segmentation/{split}.txt``.
- ``cocostuff``: ``cocostuff/images/{split}2017/<id>.jpg`` +
  ``cocostuff/annotations/{split}2017/<id>.png``. Either the official stuffthingmaps
  (COCO ids - 1 in 0..181, 255 unlabelled; the 11 unused thing ids are ignored) or
  the mmsegmentation ``<id>_labelTrainIds.png`` (0..170 already); both give 171 classes.
- ``cityscapes``: ``cityscapes/leftImg8bit/{split}/<city>/<name>_leftImg8bit.png`` +
  ``cityscapes/gtFine/{split}/<city>/<name>_gtFine_labelTrainIds.png`` (19 classes,
  255 ignored), or ``..._gtFine_labelIds.png`` mapped to train ids here.

Example:
    >>> from clusterlens.evaluate.seg_datasets import load_seg_dataset
    >>> data = load_seg_dataset("camvid", split="val")  # doctest: +SKIP
    >>> image, label = data[0]  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from clusterlens.evaluate import camvid
from clusterlens.image import load_image

DATASETS = ("camvid", "voc", "cocostuff", "cityscapes")
IGNORE = 255

VOC_CLASSES: tuple[str, ...] = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat",
    "chair", "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant",
    "sheep", "sofa", "train", "tvmonitor",
)  # fmt: skip

CITYSCAPES_CLASSES: tuple[str, ...] = (
    "road", "sidewalk", "building", "wall", "fence", "pole", "traffic light",
    "traffic sign", "vegetation", "terrain", "sky", "person", "rider", "car", "truck",
    "bus", "train", "motorcycle", "bicycle",
)  # fmt: skip
#: Cityscapes ``labelIds`` of the 19 evaluated classes, in train-id order.
CITYSCAPES_LABEL_IDS = (7, 8, 11, 12, 13, 17, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 31, 32, 33)

COCOSTUFF_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat",
    "traffic light", "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat",
    "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra", "giraffe", "backpack",
    "umbrella", "handbag", "tie", "suitcase", "frisbee", "skis", "snowboard", "sports ball",
    "kite", "baseball bat", "baseball glove", "skateboard", "surfboard", "tennis racket",
    "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair",
    "couch", "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse",
    "remote", "keyboard", "cell phone", "microwave", "oven", "toaster", "sink",
    "refrigerator", "book", "clock", "vase", "scissors", "teddy bear", "hair drier",
    "toothbrush", "banner", "blanket", "branch", "bridge", "building-other", "bush",
    "cabinet", "cage", "cardboard", "carpet", "ceiling-other", "ceiling-tile", "cloth",
    "clothes", "clouds", "counter", "cupboard", "curtain", "desk-stuff", "dirt",
    "door-stuff", "fence", "floor-marble", "floor-other", "floor-stone", "floor-tile",
    "floor-wood", "flower", "fog", "food-other", "fruit", "furniture-other", "grass",
    "gravel", "ground-other", "hill", "house", "leaves", "light", "mat", "metal",
    "mirror-stuff", "moss", "mountain", "mud", "napkin", "net", "paper", "pavement",
    "pillow", "plant-other", "plastic", "platform", "playingfield", "railing", "railroad",
    "river", "road", "rock", "roof", "rug", "salad", "sand", "sea", "shelf", "sky-other",
    "skyscraper", "snow", "solid-other", "stairs", "stone", "straw", "structural-other",
    "table", "tent", "textile-other", "towel", "tree", "vegetable", "wall-brick",
    "wall-concrete", "wall-other", "wall-panel", "wall-stone", "wall-tile", "wall-wood",
    "water-other", "waterdrops", "window-blind", "window-other", "wood",
)  # fmt: skip
#: Stuffthingmap values (COCO category id - 1) that no annotation uses.
COCOSTUFF_UNUSED = (11, 25, 28, 29, 44, 65, 67, 68, 70, 82, 90)


def _lookup(source_ids: list[int], size: int = 256) -> npt.NDArray[np.int64]:
    """Table mapping raw label values to contiguous classes; everything else -> IGNORE."""
    table = np.full(size, IGNORE, dtype=np.int64)
    table[np.asarray(source_ids)] = np.arange(len(source_ids))
    return table


COCOSTUFF_LOOKUP = _lookup([i for i in range(182) if i not in COCOSTUFF_UNUSED])
CITYSCAPES_LOOKUP = _lookup(list(CITYSCAPES_LABEL_IDS))


@dataclass(frozen=True)
class SegDataset:
    """Image / label-map pairs of one split of one data set.

    Attributes:
        name: data set name (one of :data:`DATASETS`).
        split: split name.
        class_names: the evaluated classes, index = label value.
        ignore_index: label value of unlabelled pixels.
        pairs: ``(image path, label path)`` per sample, sorted.
        label_reader: turns a label path into an (H, W) int64 map of class indices.
    """

    name: str
    split: str
    class_names: tuple[str, ...]
    ignore_index: int
    pairs: tuple[tuple[Path, Path], ...]
    label_reader: Callable[[Path], npt.NDArray[np.int64]]

    @property
    def num_classes(self) -> int:
        """Number of evaluated classes."""
        return len(self.class_names)

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]:
        image_path, label_path = self.pairs[index]
        image, label = load_image(image_path), self.label_reader(label_path)
        if image.shape[:2] != label.shape:
            raise ValueError(
                f"image {image_path} is {image.shape[:2]} but label {label_path} is {label.shape}"
            )
        return image, label

    def __iter__(self) -> Iterator[tuple[npt.NDArray[np.float32], npt.NDArray[np.int64]]]:
        for index in range(len(self)):
            yield self[index]

    def subset(self, num_samples: int | None) -> SegDataset:
        """The first ``num_samples`` pairs (all when None)."""
        if num_samples is not None and num_samples < 1:
            raise ValueError(f"num_samples must be a positive integer, got {num_samples}")
        return replace(self, pairs=self.pairs[:num_samples])


def load_seg_dataset(
    name: str, root: str | os.PathLike | None = None, split: str = "val"
) -> SegDataset:
    """Find one split of a data set in its folder layout (see the module docstring).

    Args:
        name: ``camvid``, ``voc``, ``cocostuff`` or ``cityscapes``.
        root: the data set's folder or its parent; CamVid also falls back to
            ``$CLUSTERLENS_DATA`` and ``../shared/data``.
        split: split name (``train``, ``val``; ``test`` where the layout has labels).

    Raises:
        ValueError: unknown data set name.
        FileNotFoundError: the layout is not found under ``root`` (the message names the
            folders it expected), or the split holds no labelled image.
    """
    loaders = {
        "camvid": _camvid,
        "voc": _voc,
        "cocostuff": _cocostuff,
        "cityscapes": _cityscapes,
    }
    if name not in loaders:
        raise ValueError(f"unknown data set {name!r}; accepted: {', '.join(DATASETS)}")
    if name != "camvid" and root is None:
        raise FileNotFoundError(f"data set {name!r} needs its folder: pass root=/path/to/{name}")
    dataset = loaders[name](root, split)
    if not dataset.pairs:
        raise FileNotFoundError(f"{name} split {split!r} under {root} holds no labelled image")
    return dataset


def _read_indices(path: Path) -> npt.NDArray[np.int64]:
    """A single-channel (or palette) PNG's raw index values."""
    with Image.open(path) as pil:
        if pil.mode not in {"L", "P", "I", "I;16"}:
            raise ValueError(f"label map {path} must be single-channel or palette, got {pil.mode}")
        return np.asarray(pil).astype(np.int64)


def _camvid(root: str | os.PathLike | None, split: str) -> SegDataset:
    pairs = camvid.list_pairs(split, root)

    def read(path: Path) -> npt.NDArray[np.int64]:
        return camvid.load_label(path).astype(np.int64)

    return SegDataset("camvid", split, camvid.CLASS_NAMES, camvid.IGNORE_INDEX, tuple(pairs), read)


def _find_layout(root: str | os.PathLike, relative_options: list[str], marker: str) -> Path:
    """The first of ``root/<option>`` that holds ``marker``; a clear error otherwise."""
    for option in relative_options:
        candidate = Path(root) / option
        if (candidate / marker).exists():
            return candidate
    expected = " or ".join(str(Path(root) / option / marker) for option in relative_options)
    raise FileNotFoundError(f"no data set layout at {root}: expected {expected}")


def _voc(root: str | os.PathLike, split: str) -> SegDataset:
    base = _find_layout(
        root, [".", "VOC2012", "VOCdevkit/VOC2012", "voc/VOCdevkit/VOC2012"], "SegmentationClass"
    )
    id_file = base / "ImageSets" / "Segmentation" / f"{split}.txt"
    if not id_file.is_file():
        raise FileNotFoundError(f"PASCAL VOC split list not found: {id_file}")
    pairs = []
    for image_id in id_file.read_text().split():
        image = base / "JPEGImages" / f"{image_id}.jpg"
        label = base / "SegmentationClass" / f"{image_id}.png"
        if not image.is_file() or not label.is_file():
            raise FileNotFoundError(f"PASCAL VOC id {image_id!r} lacks {image} or {label}")
        pairs.append((image, label))
    return SegDataset("voc", split, VOC_CLASSES, IGNORE, tuple(pairs), _read_indices)


def _cocostuff(root: str | os.PathLike, split: str) -> SegDataset:
    base = _find_layout(root, [".", "cocostuff", "coco_stuff164k"], "annotations")
    image_dir, label_dir = base / "images" / f"{split}2017", base / "annotations" / f"{split}2017"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise FileNotFoundError(f"COCO-Stuff split {split!r}: expected {image_dir} and {label_dir}")
    pairs = []
    for image in sorted(image_dir.glob("*.jpg")):
        train_ids = label_dir / f"{image.stem}_labelTrainIds.png"
        raw = label_dir / f"{image.stem}.png"
        if train_ids.is_file():
            pairs.append((image, train_ids))
        elif raw.is_file():
            pairs.append((image, raw))
    return SegDataset("cocostuff", split, COCOSTUFF_CLASSES, IGNORE, tuple(pairs), _coco_label)


def _coco_label(path: Path) -> npt.NDArray[np.int64]:
    values = _read_indices(path)
    if path.name.endswith("_labelTrainIds.png"):
        return values  # already 0..170 / 255
    return COCOSTUFF_LOOKUP[np.clip(values, 0, 255)]


def _cityscapes(root: str | os.PathLike, split: str) -> SegDataset:
    base = _find_layout(root, [".", "cityscapes"], "gtFine")
    image_dir, label_dir = base / "leftImg8bit" / split, base / "gtFine" / split
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise FileNotFoundError(f"Cityscapes split {split!r}: expected {image_dir} and {label_dir}")
    pairs = []
    for image in sorted(image_dir.glob("*/*_leftImg8bit.png")):
        stem = image.name[: -len("_leftImg8bit.png")]
        folder = label_dir / image.parent.name
        for suffix in ("_gtFine_labelTrainIds.png", "_gtFine_labelIds.png"):
            if (folder / f"{stem}{suffix}").is_file():
                pairs.append((image, folder / f"{stem}{suffix}"))
                break
    return SegDataset(
        "cityscapes", split, CITYSCAPES_CLASSES, IGNORE, tuple(pairs), _cityscapes_label
    )


def _cityscapes_label(path: Path) -> npt.NDArray[np.int64]:
    values = _read_indices(path)
    if path.name.endswith("_labelTrainIds.png"):
        return values
    return CITYSCAPES_LOOKUP[np.clip(values, 0, 255)]
