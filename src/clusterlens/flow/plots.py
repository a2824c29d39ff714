"""Pictures of a flow: samples over the data, trajectories, digit grids, W2 vs NFE."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only; never needs a display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from clusterlens.flow.sampling import Trajectory  # noqa: E402


def plot_trajectories(
    trajectories: dict[str, Trajectory],
    reference: torch.Tensor,
    path: str | Path,
    *,
    n_paths: int = 60,
    title: str = "",
) -> Path:
    """One panel per run: held-out data (grey), samples (colour), a few full paths.

    Args:
        trajectories: Panel title -> trajectory of 2D points.
        reference: (M, 2) held-out data.
        path: PNG to write.
        n_paths: Paths drawn per panel.
        title: Figure title.

    Returns:
        The written path.
    """
    if reference.dim() != 2 or reference.shape[1] != 2:
        raise ValueError("trajectory plots are for 2D data; use plot_image_grid for images")
    fig, axes = plt.subplots(
        1, len(trajectories), figsize=(3.2 * len(trajectories), 3.4), squeeze=False
    )
    for axis, (name, trajectory) in zip(axes[0], trajectories.items(), strict=True):
        points = trajectory.points.numpy()
        axis.scatter(*reference.numpy().T, s=2, c="0.75", label="held-out data")
        axis.scatter(*points[0].T, s=2, c="tab:blue", alpha=0.3, label="source")
        for k in range(min(n_paths, points.shape[1])):
            axis.plot(points[:, k, 0], points[:, k, 1], c="tab:olive", lw=0.6, alpha=0.8)
        axis.scatter(*points[-1].T, s=2, c="tab:red", label="samples")
        axis.set_title(f"{name}\n{trajectory.solver}, NFE {trajectory.nfe}", fontsize=9)
        axis.set_aspect("equal")
        axis.set_xticks([])
        axis.set_yticks([])
    axes[0][0].legend(loc="lower left", fontsize=6, markerscale=4)
    if title:
        fig.suptitle(title)
    return _save(fig, path)


def plot_image_grid(
    rows: dict[str, torch.Tensor], path: str | Path, *, n_columns: int = 12, title: str = ""
) -> Path:
    """One row of images per run: (N, 64) digits or (N, 3, H, W) images in [-1, 1]."""
    fig, axes = plt.subplots(
        len(rows), 1, figsize=(n_columns * 0.7, 0.9 * len(rows) + 0.4), squeeze=False
    )
    for axis, (name, images) in zip(axes[:, 0], rows.items(), strict=True):
        axis.imshow(_tile(images[:n_columns]), cmap="gray", vmin=0, vmax=1)
        axis.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        axis.set_xticks([])
        axis.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=9)
    return _save(fig, path)


def _tile(images: torch.Tensor) -> np.ndarray:
    array = images.detach().cpu().numpy()
    if array.ndim == 2:  # flat square images (digits: 64 -> 8x8)
        side = int(round(np.sqrt(array.shape[1])))
        array = array.reshape(len(array), side, side)
    elif array.ndim == 4:
        array = array.transpose(0, 2, 3, 1)
    array = np.clip((array + 1) / 2, 0, 1)
    padded = [np.pad(image, [(1, 1), (1, 1)] + [(0, 0)] * (image.ndim - 2)) for image in array]
    return np.concatenate(padded, axis=1)


def plot_metric_vs_nfe(
    curves: dict[str, tuple[list[int], list[float], list[float]]],
    path: str | Path,
    *,
    ylabel: str = "W2 to held-out data",
    title: str = "",
) -> Path:
    """Mean +- std of a metric against NFE (log x axis), one line per method."""
    fig, axis = plt.subplots(figsize=(4.8, 3.4))
    styles = ("-", "--", "-.", ":")  # identical curves stay visible on top of each other
    for k, (name, (nfes, means, stds)) in enumerate(curves.items()):
        axis.errorbar(
            nfes,
            means,
            yerr=stds,
            marker="o",
            ms=3,
            capsize=2,
            label=name,
            linestyle=styles[k % len(styles)],
        )
    axis.set_xscale("log", base=2)
    axis.set_xlabel("NFE (Euler)")
    axis.set_ylabel(ylabel)
    axis.legend(fontsize=7)
    if title:
        axis.set_title(title, fontsize=9)
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Leave room for a figure title so it does not overlap the panel titles.
    fig.tight_layout(rect=(0, 0, 1, 0.92) if fig._suptitle is not None else (0, 0, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
