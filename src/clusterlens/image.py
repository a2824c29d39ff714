"""Load, validate and convert images.

Every public entry point of clusterlens accepts the same image inputs and turns them
into one canonical form through :func:`load_image`: an ``(H, W, 3)`` float32 RGB
array in ``[0, 1]``, C-contiguous. The accepted inputs are

- a path (``str`` or :class:`os.PathLike`) to any file Pillow can decode,
- a :class:`PIL.Image.Image` in any common mode (``1``, ``L``, ``LA``, ``P``, ``RGB``,
  ``RGBA``, ``CMYK``, ``YCbCr``, ``I;16``, ``I``, ``F``),
- a NumPy array ``(H, W)``, ``(H, W, 1)``, ``(H, W, 3)`` or ``(H, W, 4)`` of dtype
  bool, uint8, uint16 or float (floats must already lie in ``[0, 1]``),
- a torch tensor ``(H, W)``, ``(C, H, W)`` or ``(1, C, H, W)`` with ``C`` in 1, 3, 4,
  with the same dtype rules.

Alpha is composited onto ``background`` (white by default) rather than dropped,
because fully transparent pixels often hold arbitrary colours.

Example:
    >>> import numpy as np
    >>> from clusterlens.image import load_image
    >>> load_image(np.zeros((4, 6), dtype=np.uint8)).shape
    (4, 6, 3)
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from PIL import Image, UnidentifiedImageError

ImageInput = Any  # str | os.PathLike | PIL.Image.Image | np.ndarray | torch.Tensor

ACCEPTED = (
    "a file path, a PIL image, a NumPy array (H, W), (H, W, 1|3|4) or a torch tensor "
    "(H, W), (1|3|4, H, W), (1, 1|3|4, H, W) of dtype bool, uint8, uint16 or float in [0, 1]"
)
_PIL_MODES_VIA_RGB = {"1", "L", "P", "RGB", "CMYK", "YCbCr", "LAB", "HSV"}
_PIL_MODES_WITH_ALPHA = {"RGBA", "LA", "PA", "RGBa", "La"}


def load_image(
    image: ImageInput,
    *,
    max_side: int | None = None,
    background: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> npt.NDArray[np.float32]:
    """Return ``image`` as an ``(H, W, 3)`` float32 RGB array in ``[0, 1]``.

    Args:
        image: Path, PIL image, NumPy array or torch tensor (see the module docstring).
        max_side: If given, images whose longer side exceeds it are downscaled (area
            averaging) so that the longer side equals it. For JPEG files the decoder
            is asked to decode at reduced size first, so a 12000x9000 photo never
            needs its full-resolution pixels in memory.
        background: RGB in ``[0, 1]`` onto which an alpha channel is composited.

    Raises:
        FileNotFoundError: the path does not exist or is a directory.
        ValueError: the file is empty, corrupt or truncated, the mode, dtype or shape
            is not supported, the array is empty, or float values lie outside
            ``[0, 1]`` or are not finite.
        TypeError: the input is of none of the accepted types.
    """
    if max_side is not None and (not isinstance(max_side, int) or max_side < 1):
        raise ValueError(f"max_side must be a positive integer or None, got {max_side!r}")
    original = None
    if isinstance(image, (str, os.PathLike)):
        rgb = _from_path(Path(image), max_side, background)
        # the decoder may already have shrunk it (JPEG draft, whole-factor reduce): the
        # final size still follows from the file's own size
        original = image_size(image) if max_side is not None else None
    elif isinstance(image, Image.Image):
        rgb = _from_pil(image, background)
    elif isinstance(image, torch.Tensor):
        rgb = _from_array(_tensor_to_hwc(image), background)
    elif isinstance(image, np.ndarray):
        rgb = _from_array(image, background)
    else:
        raise TypeError(f"cannot load an image from {type(image).__name__}; accepted: {ACCEPTED}")
    if max_side is not None:
        rgb = _limit_side(rgb, max_side, original)
    return np.ascontiguousarray(rgb, dtype=np.float32)


def image_size(image: ImageInput) -> tuple[int, int]:
    """(height, width) of an image input without decoding its pixels where possible."""
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        if path.is_dir():
            raise FileNotFoundError(f"expected an image file but {path} is a directory")
        if not path.is_file():
            raise FileNotFoundError(f"image file not found: {path}")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as pil:
                    return pil.height, pil.width
        except (UnidentifiedImageError, OSError) as err:
            raise ValueError(f"not a readable image: {path} ({err})") from err
    if isinstance(image, Image.Image):
        return image.height, image.width
    if isinstance(image, torch.Tensor):
        return tuple(_tensor_to_hwc(image).shape[:2])
    if isinstance(image, np.ndarray) and image.ndim in (2, 3):
        return image.shape[0], image.shape[1]
    return load_image(image).shape[:2]  # let load_image explain what is wrong


def to_tensor(image: npt.NDArray[np.float32]) -> torch.Tensor:
    """Turn an ``(H, W, 3)`` array from :func:`load_image` into a ``(3, H, W)`` tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)))


def _from_path(path: Path, max_side: int | None, background: tuple) -> np.ndarray:
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise FileNotFoundError(f"expected an image file but {path} is a directory")
    if path.stat().st_size == 0:
        raise ValueError(f"image file is empty (0 bytes): {path}")
    try:
        with warnings.catch_warnings():
            # The caller asked for this file explicitly; a large photo is not a bomb.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as pil:
                if max_side is not None and pil.format == "JPEG":
                    pil.draft("RGB", _draft_size(pil.size, max_side))
                pil.load()
                return _from_pil(_pre_reduced(pil, max_side), background)
    except UnidentifiedImageError as err:
        raise ValueError(
            f"not a readable image (unknown format or corrupt header): {path}"
        ) from err
    except Image.DecompressionBombError as err:
        raise ValueError(f"{path} is too large for Pillow's safety limit: {err}") from err
    except (OSError, SyntaxError) as err:
        raise ValueError(f"image file is truncated or corrupt: {path} ({err})") from err


#: Modes whose pixels Pillow's ``reduce`` (box averaging by an integer factor) accepts.
_REDUCIBLE_MODES = {"L", "LA", "RGB", "RGBA", "I", "F"}


def _pre_reduced(pil: Image.Image, max_side: int | None) -> Image.Image:
    """Shrink a large non-JPEG by a whole factor while it is still 8-bit (or its own
    depth), keeping at least ``max_side`` pixels: the float copy made next is then small.
    A 12000x9000 PNG otherwise needs 1.3 GB of float pixels before it can be shrunk."""
    if max_side is None or pil.mode not in _REDUCIBLE_MODES:
        return pil
    factor = max(pil.size) // max_side
    return pil.reduce(factor) if factor >= 2 else pil


def _draft_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """Smallest size the JPEG decoder may shrink to while keeping max_side pixels."""
    scale = max_side / max(size)
    return (max(1, int(size[0] * scale)), max(1, int(size[1] * scale)))


def _from_pil(pil: Image.Image, background: tuple) -> np.ndarray:
    if pil.width == 0 or pil.height == 0:
        raise ValueError(f"image has zero size: {pil.width}x{pil.height}")
    mode = pil.mode
    if mode.startswith("I;16"):
        return _from_array(np.asarray(pil, dtype=np.uint16), background)
    if mode == "I":
        values = np.asarray(pil, dtype=np.int64)
        if values.min() < 0 or values.max() > 65535:
            raise ValueError(
                "32-bit integer image has values outside 0..65535; accepted integer images "
                "are 8-bit or 16-bit"
            )
        return _from_array(values.astype(np.uint16), background)
    if mode == "F":
        return _from_array(np.asarray(pil, dtype=np.float32), background)
    if mode in _PIL_MODES_WITH_ALPHA:
        return _from_array(np.asarray(pil.convert("RGBA")), background)
    if mode in _PIL_MODES_VIA_RGB:
        if mode == "P" and "transparency" in pil.info:
            return _from_array(np.asarray(pil.convert("RGBA")), background)
        return _from_array(np.asarray(pil.convert("RGB")), background)
    raise ValueError(
        f"unsupported PIL image mode {mode!r}; accepted modes: "
        f"{sorted(_PIL_MODES_VIA_RGB | _PIL_MODES_WITH_ALPHA | {'I;16', 'I', 'F'})}"
    )


def _tensor_to_hwc(tensor: torch.Tensor) -> np.ndarray:
    array = tensor.detach().cpu()
    if array.ndim == 4:
        if array.shape[0] != 1:
            raise ValueError(
                f"expected a single image, got a batch tensor of shape {tuple(tensor.shape)}; "
                f"accepted: {ACCEPTED}"
            )
        array = array[0]
    if array.ndim == 3:
        if array.shape[0] not in (1, 3, 4):
            raise ValueError(
                f"tensor of shape {tuple(tensor.shape)} is not channels-first with 1, 3 or 4 "
                f"channels; accepted: {ACCEPTED}"
            )
        array = array.permute(1, 2, 0)
    if array.dtype == torch.bfloat16:
        array = array.float()
    return array.numpy()


def _from_array(array: np.ndarray, background: tuple) -> np.ndarray:
    if array.size == 0:
        raise ValueError(f"image array is empty (shape {array.shape}); accepted: {ACCEPTED}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise ValueError(f"image array has shape {array.shape}; accepted: {ACCEPTED}")
    values = _to_unit_float(array)
    if values.shape[2] == 1:
        values = np.repeat(values, 3, axis=2)
    if values.shape[2] == 4:
        values = _composite(values, background)
    return values


def _to_unit_float(array: np.ndarray) -> np.ndarray:
    if array.dtype == np.bool_:
        return array.astype(np.float32)
    if array.dtype == np.uint8:
        return array.astype(np.float32) / 255.0
    if array.dtype == np.uint16:
        return array.astype(np.float32) / 65535.0
    if np.issubdtype(array.dtype, np.floating):
        values = array.astype(np.float32, copy=False)  # read-only from here on
        if not np.isfinite(values).all():
            raise ValueError("float image contains NaN or infinite values")
        low, high = float(values.min()), float(values.max())
        if low < 0.0 or high > 1.0:
            raise ValueError(
                f"float image values must lie in [0, 1], found [{low:.4g}, {high:.4g}]; "
                "divide by 255 (8-bit) or 65535 (16-bit) first"
            )
        return values
    raise ValueError(f"unsupported image dtype {array.dtype}; accepted: {ACCEPTED}")


def _composite(rgba: np.ndarray, background: tuple) -> np.ndarray:
    alpha = rgba[:, :, 3:4]
    backdrop = np.asarray(background, dtype=np.float32).reshape(1, 1, 3)
    return rgba[:, :, :3] * alpha + backdrop * (1.0 - alpha)


def _limit_side(
    rgb: np.ndarray, max_side: int, original: tuple[int, int] | None = None
) -> np.ndarray:
    """Downscale so the longer side is ``max_side``; the size follows from ``original``
    (height, width) when the pixels were already reduced while decoding."""
    height, width = original or rgb.shape[:2]
    if max(height, width) <= max_side:
        return rgb
    import cv2  # local: only needed when resizing

    scale = max_side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.clip(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), 0.0, 1.0)
