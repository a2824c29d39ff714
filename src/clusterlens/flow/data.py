"""Data sets for flow matching: 2D toys, scikit-learn's digits, and image folders.

Every data set is a fixed, id-addressed :class:`FlowDataset`: a train split, a held-out
split and one string id per training sample. Ids make the cluster assignments written by
``encode-cluster`` line up with the samples a shuffled training loop draws, whatever the
order. Toys are drawn once from ``data_seed`` so the same spec always yields the same
samples (and ids).

Specs accepted by :func:`load_dataset`:

- ``8gaussians``, ``moons``, ``checkerboard``: 2D toys;
- ``digits``: scikit-learn's bundled 8x8 digits (64-d, scaled to [-1, 1]);
- a folder of images: resized to ``image_size`` and scaled to [-1, 1], shape (3, S, S).

Sources (the noise side of the flow) accepted by :func:`sample_source`: ``normal`` or any
toy name of the same dimension.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

TOYS = ("8gaussians", "moons", "checkerboard")
BUNDLED = (*TOYS, "digits")
SOURCES = ("normal", *TOYS)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class FlowDataset:
    """A fixed training split with ids, plus a held-out split for evaluation.

    Attributes:
        name: The spec it was loaded from (toy name, ``digits`` or a folder path).
        train: (N, *shape) float32 training samples.
        test: (M, *shape) float32 held-out samples.
        ids: N string ids, one per training sample (``"0"``, ``"1"``... or file paths).
        meta: How it was made (data seed, sizes, scaling), stored beside clusters and runs.
    """

    name: str
    train: torch.Tensor
    test: torch.Tensor
    ids: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def sample_shape(self) -> tuple[int, ...]:
        """Shape of one sample: (2,), (64,) or (3, S, S)."""
        return tuple(self.train.shape[1:])

    @property
    def is_image(self) -> bool:
        """True for (C, H, W) samples, which need the U-Net rather than the MLP."""
        return self.train.dim() == 4


def sample_toy(name: str, n: int, generator: torch.Generator) -> torch.Tensor:
    """Draw ``n`` points of a 2D toy distribution.

    Args:
        name: ``8gaussians``, ``moons`` or ``checkerboard``.
        n: Number of points.
        generator: Source of randomness (makes draws reproducible).

    Returns:
        (n, 2) float32 tensor, roughly within [-4, 4]^2.
    """
    if name == "8gaussians":
        angles = torch.randint(0, 8, (n,), generator=generator).float() * (math.pi / 4)
        centers = 4.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        return centers + 0.5 * torch.randn(n, 2, generator=generator)
    if name == "moons":
        # Two interleaved half circles (as sklearn.datasets.make_moons), centred and scaled
        # to the 8-gaussians' range so the transport between them is non-trivial.
        upper = torch.rand(n, generator=generator) < 0.5
        angle = torch.rand(n, generator=generator) * math.pi
        x = torch.where(upper, torch.cos(angle), 1.0 - torch.cos(angle))
        y = torch.where(upper, torch.sin(angle), 0.5 - torch.sin(angle))
        points = torch.stack([x - 0.5, y - 0.25], dim=1) * 3.0
        return points + 0.1 * torch.randn(n, 2, generator=generator)
    if name == "checkerboard":
        # FFJORD's 4x4 checkerboard of unit cells (scaled by 2): y picks one of two rows
        # per column, shifted by one row in odd columns.
        x = torch.rand(n, generator=generator) * 4 - 2
        row = torch.rand(n, generator=generator) - 2.0 * torch.randint(
            0, 2, (n,), generator=generator
        )
        y = row + torch.remainder(torch.floor(x), 2)
        return torch.stack([x, y], dim=1) * 2.0
    raise ValueError(f"unknown toy {name!r}; accepted: {', '.join(TOYS)}")


def sample_source(name: str, shape: tuple[int, ...], n: int, generator: torch.Generator):
    """Draw ``n`` samples of the source (noise) distribution.

    Args:
        name: ``normal`` (standard Gaussian of any shape) or a 2D toy name.
        shape: Shape of one sample.
        n: Number of samples.
        generator: Source of randomness.

    Returns:
        (n, *shape) float32 tensor.
    """
    if name == "normal":
        return torch.randn(n, *shape, generator=generator)
    if name in TOYS:
        if tuple(shape) != (2,):
            raise ValueError(f"source {name!r} is 2D but the data samples have shape {shape}")
        return sample_toy(name, n, generator)
    raise ValueError(f"unknown source {name!r}; accepted: {', '.join(SOURCES)}")


def load_dataset(
    spec: str | Path,
    *,
    n_train: int = 20000,
    n_test: int = 2000,
    data_seed: int = 0,
    image_size: int = 32,
) -> FlowDataset:
    """Load a data set by name or image folder.

    Args:
        spec: A toy name, ``digits`` or a folder of images.
        n_train: Training samples for toys (digits and folders use their own sizes).
        n_test: Held-out samples for toys.
        data_seed: Seed of the toy draws and of the digits / folder train-test split.
        image_size: Side of the square images a folder is resized to.

    Returns:
        The :class:`FlowDataset`.

    Raises:
        ValueError: unknown name or bad sizes.
        FileNotFoundError: a folder that does not exist or holds no images.
    """
    name = str(spec)
    if name in TOYS:
        if n_train < 2 or n_test < 1:
            raise ValueError(f"n_train must be >= 2 and n_test >= 1, got {n_train}, {n_test}")
        generator = torch.Generator().manual_seed(data_seed)
        train = sample_toy(name, n_train, generator)
        test = sample_toy(name, n_test, generator)
        meta = {"kind": "toy", "n_train": n_train, "n_test": n_test, "data_seed": data_seed}
        return FlowDataset(name, train, test, [str(i) for i in range(n_train)], meta)
    if name == "digits":
        return _load_digits(data_seed)
    path = Path(name)
    if path.is_dir():
        return _load_image_folder(path, image_size, data_seed)
    raise FileNotFoundError(
        f"data {name!r} is neither a bundled data set ({', '.join(BUNDLED)}) nor a folder"
    )


def _load_digits(data_seed: int) -> FlowDataset:
    from sklearn.datasets import load_digits  # bundled with scikit-learn, no download

    pixels = load_digits().data.astype(np.float32) / 8.0 - 1.0  # 0..16 -> [-1, 1]
    order = np.random.default_rng(data_seed).permutation(len(pixels))
    n_test = len(pixels) // 5
    test_idx, train_idx = order[:n_test], order[n_test:]
    meta = {"kind": "digits", "n_train": len(train_idx), "n_test": n_test, "data_seed": data_seed}
    ids = [str(int(i)) for i in train_idx]  # index in sklearn's array: stable across runs
    train = torch.from_numpy(pixels[train_idx])
    return FlowDataset("digits", train, torch.from_numpy(pixels[test_idx]), ids, meta)


def list_images(folder: Path) -> list[Path]:
    """Image files below ``folder`` (recursive), sorted; raises if there are none."""
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {folder} does not exist")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    if len(files) < 2:
        raise FileNotFoundError(
            f"{folder} holds {len(files)} images; need at least 2 ({', '.join(IMAGE_SUFFIXES)})"
        )
    return files


def load_images(files: list[Path], image_size: int) -> torch.Tensor:
    """Read, convert to RGB, resize to ``image_size`` and scale to [-1, 1]: (N, 3, S, S)."""
    from PIL import Image

    if image_size < 8:
        raise ValueError(f"image_size must be >= 8, got {image_size}")
    arrays = []
    for file in files:
        with Image.open(file) as image:
            rgb = image.convert("RGB").resize((image_size, image_size), Image.BILINEAR)
        arrays.append(np.asarray(rgb, dtype=np.float32) / 127.5 - 1.0)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()


def _load_image_folder(folder: Path, image_size: int, data_seed: int) -> FlowDataset:
    files = list_images(folder)
    images = load_images(files, image_size)
    order = np.random.default_rng(data_seed).permutation(len(files))
    n_test = max(1, len(files) // 10)
    test_idx, train_idx = order[:n_test], np.sort(order[n_test:])
    ids = [files[i].relative_to(folder).as_posix() for i in train_idx]
    meta = {
        "kind": "images",
        "n_train": len(train_idx),
        "n_test": n_test,
        "data_seed": data_seed,
        "image_size": image_size,
    }
    return FlowDataset(str(folder), images[train_idx], images[test_idx], ids, meta)


class BatchStream:
    """Shuffled mini-batches of (samples, indices), reproducible from (seed, step).

    Each epoch is a fresh permutation drawn from ``seed + epoch``, so the batch at any
    step can be rebuilt after a restart: resuming never repeats or skips samples.

    Args:
        n: Number of training samples.
        batch_size: Samples per batch (at most ``n``).
        seed: Shuffling seed.
    """

    def __init__(self, n: int, batch_size: int, seed: int) -> None:
        if batch_size < 2 or batch_size > n:
            raise ValueError(f"batch_size must be in [2, {n}] (the training set size)")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.per_epoch = n // batch_size  # drop the ragged tail: equal batch sizes
        self._epoch, self._order = -1, torch.empty(0, dtype=torch.long)

    def indices(self, step: int) -> torch.Tensor:
        """Indices of the training samples in batch number ``step`` (0-based)."""
        epoch, offset = divmod(step, self.per_epoch)
        if epoch != self._epoch:
            generator = torch.Generator().manual_seed(self.seed * 100_003 + epoch)
            self._epoch, self._order = epoch, torch.randperm(self.n, generator=generator)
        start = offset * self.batch_size
        return self._order[start : start + self.batch_size]
