"""Read the Berkeley Segmentation Data Set (BSDS500): images and every annotator's labels.

Layout (see ``../shared/data/README.md``)::

    bsds500/images/{train,val,test}/<id>.jpg
    bsds500/groundTruth/{train,val,test}/<id>.mat   # groundTruth: 1 x n struct array

Each ``.mat`` holds 4-9 human segmentations, each with ``Segmentation`` (uint16,
labels from 1) and ``Boundaries`` (uint8). This reader returns segmentations as
int32 label maps starting at 0 and boundaries as bool maps.

Example:
    >>> from clusterlens.evaluate.bsds import iter_bsds
    >>> sample = next(iter_bsds("val", limit=1))  # doctest: +SKIP
    >>> sample.image.shape, len(sample.segmentations)  # doctest: +SKIP
    ((321, 481, 3), 5)
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import scipy.io

from clusterlens.evaluate.datasets import dataset_dir
from clusterlens.image import load_image

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class BsdsSample:
    """One BSDS image with all its human annotations.

    Attributes:
        image_id: file stem, e.g. ``"101085"``.
        image: (H, W, 3) float32 RGB in [0, 1].
        segmentations: one (H, W) int32 label map per annotator, labels from 0.
        boundaries: one (H, W) bool boundary map per annotator.
    """

    image_id: str
    image: npt.NDArray[np.float32]
    segmentations: list[npt.NDArray[np.int32]]
    boundaries: list[npt.NDArray[np.bool_]]


def read_ground_truth(path: str | os.PathLike) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Every annotator's (segmentation, boundaries) from one BSDS ``.mat`` file.

    Raises:
        FileNotFoundError: the file is missing.
        ValueError: the file has no ``groundTruth`` entry or it holds no annotation.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"BSDS ground-truth file not found: {path}")
    content = scipy.io.loadmat(path)
    if "groundTruth" not in content:
        raise ValueError(f"{path} has no 'groundTruth' entry (keys: {sorted(content)})")
    annotations = content["groundTruth"].ravel()
    if annotations.size == 0:
        raise ValueError(f"{path} holds no annotations")
    segmentations, boundaries = [], []
    for entry in annotations:
        segmentation = np.asarray(entry["Segmentation"][0, 0], dtype=np.int32)
        segmentations.append(segmentation - segmentation.min())
        boundaries.append(np.asarray(entry["Boundaries"][0, 0]).astype(bool))
    return segmentations, boundaries


def bsds_ids(split: str = "val", root: str | os.PathLike | None = None) -> list[str]:
    """Sorted image ids of ``split`` that have both an image and a ground truth."""
    images, truths = _split_dirs(split, root)
    return sorted(p.stem for p in images.glob("*.jpg") if (truths / f"{p.stem}.mat").is_file())


def load_bsds_sample(
    image_id: str, split: str = "val", root: str | os.PathLike | None = None
) -> BsdsSample:
    """Load one image and its annotations."""
    images, truths = _split_dirs(split, root)
    segmentations, boundaries = read_ground_truth(truths / f"{image_id}.mat")
    return BsdsSample(image_id, load_image(images / f"{image_id}.jpg"), segmentations, boundaries)


def iter_bsds(
    split: str = "val", root: str | os.PathLike | None = None, limit: int | None = None
) -> Iterator[BsdsSample]:
    """Yield the samples of ``split`` in id order, at most ``limit`` of them.

    Args:
        split: ``train``, ``val`` or ``test``.
        root: the folder holding ``bsds500/`` (default: ``$CLUSTERLENS_DATA`` or
            ``../shared/data``), or the ``bsds500`` folder itself.
        limit: stop after this many images.
    """
    ids = bsds_ids(split, root)
    for image_id in ids[:limit] if limit is not None else ids:
        yield load_bsds_sample(image_id, split, root)


def _split_dirs(split: str, root: str | os.PathLike | None) -> tuple[Path, Path]:
    if split not in SPLITS:
        raise ValueError(f"BSDS split must be one of {SPLITS}, got {split!r}")
    base = _bsds_folder(root)
    images, truths = base / "images" / split, base / "groundTruth" / split
    if not images.is_dir() or not truths.is_dir():
        raise FileNotFoundError(f"BSDS split {split!r} not found: expected {images} and {truths}")
    return images, truths


def _bsds_folder(root: str | os.PathLike | None) -> Path:
    """The bsds500 folder: ``root`` itself, ``root/bsds500``, or found by ``dataset_dir``."""
    if root is None:
        return dataset_dir("bsds500")
    root = Path(root)
    for candidate in (root, root / "bsds500"):
        if (candidate / "images").is_dir():
            return candidate
    # An explicit folder never falls back to another location: that would hide typos.
    raise FileNotFoundError(
        f"BSDS500 not found at {root}: expected {root}/images or {root}/bsds500/images"
    )
