"""``sam`` and ``sam2`` backends: automatic mask generation, resolved into a label map.

Both run the library's own automatic mask generator (``segment-anything`` /
``sam2`` from PyPI, the ``clusterlens[sam]`` extra) with the parameters of seed 01
section 2.1 exposed, then settle overlaps and uncovered pixels with
:func:`clusterlens.regions.masks.resolve_masks` (most stable mask first; leftovers
to the nearest mask or a background cluster).

Weights are loaded from a checkpoint path given as the ``checkpoint`` option (or
the ``CLUSTERLENS_SAM_CHECKPOINT`` / ``CLUSTERLENS_SAM2_CHECKPOINT`` variables);
there is no download and no silent fallback to random weights. A ready model can
be passed as ``model=`` instead (tests build tiny random ones this way).

``n_segments`` does not steer SAM: the number of masks follows the image and the
thresholds (``points_per_side``, ``pred_iou_thresh``, ``stability_score_thresh``).

Example:
    >>> from clusterlens.regions import cluster_image
    >>> cmap = cluster_image("photo.jpg", "sam", checkpoint="sam_vit_b.pth")  # doctest: +SKIP
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from clusterlens.models.checkpoints import load_checkpoint
from clusterlens.regions.masks import resolve_masks
from clusterlens.regions.registry import register_method

SAM_ENV = "CLUSTERLENS_SAM_CHECKPOINT"
SAM2_ENV = "CLUSTERLENS_SAM2_CHECKPOINT"
SAM_MODEL_TYPES = ("vit_h", "vit_l", "vit_b")
#: Seed 01, section 2.1 (ViT-H automatic mode).
SEED_PARAMETERS = {
    "points_per_side": 32,
    "pred_iou_thresh": 0.86,
    "stability_score_thresh": 0.92,
    "crop_n_layers": 1,
    "crop_n_points_downscale_factor": 2,
    "min_mask_region_area": 100,
}
#: sam2 package config for each checkpoint size (matched on the checkpoint's file name).
SAM2_CONFIGS = {
    "tiny": "configs/sam2.1/sam2.1_hiera_t.yaml",
    "small": "configs/sam2.1/sam2.1_hiera_s.yaml",
    "base_plus": "configs/sam2.1/sam2.1_hiera_b+.yaml",
    "large": "configs/sam2.1/sam2.1_hiera_l.yaml",
}


class CheckpointNotFoundError(FileNotFoundError):
    """A SAM / SAM2 checkpoint was asked for but is not on disk."""


def load_sam(
    checkpoint: str | os.PathLike | None = None, model_type: str = "vit_b", device: str = "cpu"
):
    """Build a segment-anything model and load its checkpoint.

    Args:
        checkpoint: path to ``sam_vit_{h,l,b}_*.pth``; default ``$CLUSTERLENS_SAM_CHECKPOINT``.
        model_type: ``vit_h``, ``vit_l`` or ``vit_b`` (must match the checkpoint).
        device: torch device.

    Raises:
        CheckpointNotFoundError: no checkpoint at the given or configured path.
        ValueError: unknown model type.
        ImportError: ``segment-anything`` is not installed.
    """
    if model_type not in SAM_MODEL_TYPES:
        raise ValueError(f"SAM model_type must be one of {SAM_MODEL_TYPES}, got {model_type!r}")
    path = _checkpoint_path(checkpoint, SAM_ENV, f"sam:{model_type}", "sam_vit_b_01ec64.pth")
    state = _state_dict(path, f"sam:{model_type}")
    sam_model_registry = _import("segment_anything", "segment-anything").sam_model_registry
    # Built without a checkpoint: the library's own load is torch.load(f), which runs the
    # file's pickle code on torch < 2.6; the weights come from the safe load above.
    model = sam_model_registry[model_type]()
    _load_weights(model, state, path, f"sam:{model_type}")
    return model.to(device).eval()


def load_sam2(
    checkpoint: str | os.PathLike | None = None, config: str | None = None, device: str = "cpu"
):
    """Build a SAM2 model from the ``sam2`` package config and load its checkpoint.

    Args:
        checkpoint: path to ``sam2.1_hiera_{tiny,small,base_plus,large}.pt``; default
            ``$CLUSTERLENS_SAM2_CHECKPOINT``.
        config: sam2 config name; default chosen from the checkpoint file name.
        device: torch device.

    Raises:
        CheckpointNotFoundError: no checkpoint at the given or configured path.
        ValueError: no config given and none matches the file name.
        ImportError: ``sam2`` is not installed.
    """
    path = _checkpoint_path(checkpoint, SAM2_ENV, "sam2", "sam2.1_hiera_tiny.pt")
    if config is None:
        matches = [name for key, name in SAM2_CONFIGS.items() if key in path.name]
        if not matches:
            raise ValueError(
                f"cannot tell the SAM2 size from {path.name!r}; pass config= one of "
                f"{sorted(SAM2_CONFIGS.values())}"
            )
        config = matches[0]
    state = _state_dict(path, "sam2", key="model")
    build_sam2 = _import("sam2.build_sam", "sam2").build_sam2
    model = build_sam2(config, None, device="cpu")  # weights from the safe load above
    _load_weights(model, state, path, f"sam2 ({config})")
    return model.to(device).eval()


@register_method("sam", "segment-anything automatic masks (checkpoint=..., seed 01 parameters)")
def sam(
    rgb: np.ndarray,
    n_segments: int,
    checkpoint: str | os.PathLike | None = None,
    model: Any | None = None,
    model_type: str = "vit_b",
    device: str = "cpu",
    leftovers: str = "nearest",
    points_per_batch: int = 64,
    **generator_options: Any,
) -> np.ndarray:
    """segment-anything automatic mask generation resolved into labels.

    Args:
        rgb: (H, W, 3) float32 in [0, 1].
        n_segments: ignored (SAM decides the number of masks).
        checkpoint / model_type / device: see :func:`load_sam`.
        model: a ready ``segment_anything.modeling.Sam`` (skips loading).
        leftovers: ``nearest`` or ``background`` (see :func:`resolve_masks`).
        points_per_batch: prompts per forward pass.
        **generator_options: ``SamAutomaticMaskGenerator`` options; defaults are
            :data:`SEED_PARAMETERS`.
    """
    model = model if model is not None else load_sam(checkpoint, model_type, device)
    module = _import("segment_anything", "segment-anything")
    options = {**SEED_PARAMETERS, **generator_options, "points_per_batch": points_per_batch}
    generator = module.SamAutomaticMaskGenerator(model, **options)
    return resolve_masks(generator.generate(_uint8(rgb)), rgb.shape[:2], leftovers)


@register_method("sam2", "SAM2 automatic masks (checkpoint=..., seed 01 parameters)")
def sam2(
    rgb: np.ndarray,
    n_segments: int,
    checkpoint: str | os.PathLike | None = None,
    model: Any | None = None,
    config: str | None = None,
    device: str = "cpu",
    leftovers: str = "nearest",
    points_per_batch: int = 64,
    **generator_options: Any,
) -> np.ndarray:
    """SAM2 automatic mask generation resolved into labels (options as for ``sam``)."""
    model = model if model is not None else load_sam2(checkpoint, config, device)
    module = _import("sam2.automatic_mask_generator", "sam2")
    options = {**SEED_PARAMETERS, **generator_options, "points_per_batch": points_per_batch}
    generator = module.SAM2AutomaticMaskGenerator(model, **options)
    return resolve_masks(generator.generate(_uint8(rgb)), rgb.shape[:2], leftovers)


def _uint8(rgb: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray((np.clip(rgb, 0, 1) * 255).round().astype(np.uint8))


def _checkpoint_path(
    checkpoint: str | os.PathLike | None, env: str, model_name: str, example: str
) -> Path:
    given = checkpoint if checkpoint is not None else os.environ.get(env)
    if given is None:
        raise CheckpointNotFoundError(
            f"{model_name} needs a checkpoint: pass checkpoint='/path/to/{example}' or set ${env}; "
            "weights are never downloaded"
        )
    path = Path(given).expanduser()
    if not path.is_file():
        raise CheckpointNotFoundError(
            f"{model_name} checkpoint not found at {path} (from "
            f"{'checkpoint=' if checkpoint is not None else '$' + env}); download {example} "
            "from the model's release page and pass its path"
        )
    return path


def _state_dict(path: Path, model_name: str, key: str | None = None) -> dict:
    """The checkpoint's tensors, unpickled with ``weights_only=True`` (nothing else runs).

    Raises:
        ValueError: the file refers to other objects (and could run code), is not a
            readable torch file, or lacks ``key``.
    """

    state = load_checkpoint(path, f"{model_name} checkpoint")
    if key is not None:
        if not isinstance(state, dict) or key not in state:
            raise ValueError(f"{model_name} checkpoint {path} has no {key!r} entry")
        state = state[key]
    if not isinstance(state, dict):
        raise ValueError(f"{model_name} checkpoint {path} does not hold a state dict")
    return state


def _load_weights(model: Any, state: dict, path: Path, model_name: str) -> None:
    try:
        model.load_state_dict(state)
    except RuntimeError as err:  # missing / unexpected / mis-shaped tensors
        first = str(err).strip().splitlines()[0]
        raise ValueError(
            f"{path} does not fit {model_name} (another model size or family?): {first}"
        ) from err


def _import(module: str, package: str):
    try:
        return __import__(module, fromlist=["_"])
    except ImportError as err:
        raise ImportError(
            f"the {package!r} package is needed for this backend: pip install {package} "
            "(or clusterlens[sam])"
        ) from err
