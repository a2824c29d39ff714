"""Read the CamVid road-scene data set (SegNet release, 11 classes + Unlabelled).

The folder layout is ``<root>/camvid/{train,val,test}/*.png`` with the matching label
maps in ``<split>annot/`` under the same file name. Labels are 8-bit class indices
``0..10``; ``11`` marks unlabelled pixels, which every metric ignores.

Example:
    >>> from clusterlens.evaluate.camvid import list_pairs, load_pair
    >>> pairs = list_pairs("val")  # doctest: +SKIP
    >>> image, label = load_pair(*pairs[0])  # doctest: +SKIP
    >>> image.shape, label.shape  # doctest: +SKIP
    ((360, 480, 3), (360, 480))
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import numpy.typing as npt
from PIL import Image

from clusterlens.evaluate.datasets import dataset_dir
from clusterlens.image import load_image

CLASS_NAMES: tuple[str, ...] = (
    "Sky",
    "Building",
    "Pole",
    "Road",
    "Pavement",
    "Tree",
    "SignSymbol",
    "Fence",
    "Car",
    "Pedestrian",
    "Bicyclist",
)
NUM_CLASSES = len(CLASS_NAMES)
IGNORE_INDEX = 11
SPLITS = ("train", "val", "test")


def camvid_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Return the CamVid folder.

    Args:
        explicit: Either the ``camvid`` folder itself or its parent (the data root).
            When None, ``$CLUSTERLENS_DATA`` and ``../shared/data`` are tried.

    Raises:
        FileNotFoundError: no CamVid folder was found; the message says where it looked.
    """
    if explicit is None:
        return dataset_dir("camvid")
    # An explicit path must be used as given, never silently replaced by another one.
    # Any split's label folder marks a CamVid folder: a test-only copy is valid too.
    for candidate in (Path(explicit), Path(explicit) / "camvid"):
        if any((candidate / f"{split}annot").is_dir() for split in SPLITS):
            return candidate
    raise FileNotFoundError(
        f"no CamVid data at {explicit}: expected {explicit}/<split>annot/ or "
        f"{explicit}/camvid/<split>annot/ with <split> one of {', '.join(SPLITS)} "
        "(accepted: the camvid folder or its parent)"
    )


def list_pairs(split: str, root: str | os.PathLike | None = None) -> list[tuple[Path, Path]]:
    """List ``(image path, label path)`` pairs of one split, sorted by file name.

    Args:
        split: One of ``"train"``, ``"val"``, ``"test"``.
        root: The ``camvid`` folder or its parent; see :func:`camvid_dir`.

    Raises:
        ValueError: ``split`` is not one of the accepted names.
        FileNotFoundError: the split folder is missing or an image has no label map.
    """
    if split not in SPLITS:
        raise ValueError(f"unknown CamVid split {split!r}; accepted: {', '.join(SPLITS)}")
    base = camvid_dir(root)
    image_dir, label_dir = base / split, base / f"{split}annot"
    if not image_dir.is_dir() or not label_dir.is_dir():
        raise FileNotFoundError(
            f"CamVid split {split!r} not found: expected folders {image_dir} and {label_dir}"
        )
    pairs = []
    for image_path in sorted(image_dir.glob("*.png")):
        label_path = label_dir / image_path.name
        if not label_path.is_file():
            raise FileNotFoundError(f"CamVid image {image_path} has no label map {label_path}")
        pairs.append((image_path, label_path))
    return pairs


def load_label(path: str | os.PathLike) -> npt.NDArray[np.uint8]:
    """Load a label map as an ``(H, W)`` uint8 array of class indices (11 = ignore).

    Raises:
        ValueError: the file is not a single-channel map or holds values above 11.
    """
    with Image.open(path) as pil:
        label = np.asarray(pil)
    if label.ndim != 2:
        raise ValueError(f"CamVid label {path} must be single-channel, got shape {label.shape}")
    if label.size and int(label.max()) > IGNORE_INDEX:
        raise ValueError(
            f"CamVid label {path} holds value {int(label.max())}; accepted: 0..{IGNORE_INDEX}"
        )
    return label.astype(np.uint8, copy=False)


def load_pair(
    image_path: str | os.PathLike, label_path: str | os.PathLike
) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.uint8]]:
    """Load one image (``(H, W, 3)`` float32 in ``[0, 1]``) and its label map.

    Raises:
        ValueError: image and label sizes differ.
    """
    image = load_image(image_path)
    label = load_label(label_path)
    if image.shape[:2] != label.shape:
        raise ValueError(
            f"image {image_path} is {image.shape[:2]} but label {label_path} is {label.shape}"
        )
    return image, label


def load_split_uint8(
    split: str, root: str | os.PathLike | None = None, limit: int | None = None
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.uint8]]:
    """Load a whole split into memory as ``(N, H, W, 3)`` uint8 images and ``(N, H, W)`` labels.

    CamVid is small (367 training images are ~190 MB as uint8), so training preloads
    it once instead of decoding PNGs every epoch.

    Args:
        split: Split name, see :func:`list_pairs`.
        root: The ``camvid`` folder or its parent.
        limit: Load only the first ``limit`` pairs (for smoke runs).
    """
    pairs = list_pairs(split, root)[:limit]
    if not pairs:
        raise FileNotFoundError(f"CamVid split {split!r} holds no images")
    images, labels = [], []
    for image_path, label_path in pairs:
        with Image.open(image_path) as pil:
            images.append(np.asarray(pil.convert("RGB")))
        labels.append(load_label(label_path))
    shapes = {image.shape[:2] for image in images} | {label.shape for label in labels}
    if len(shapes) != 1:
        raise ValueError(f"CamVid split {split!r} mixes image sizes {sorted(shapes)}")
    return np.stack(images), np.stack(labels)
