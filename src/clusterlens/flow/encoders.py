"""Encoders that map samples to the feature space k-means clusters in.

Names accepted by :func:`make_encoder`:

- ``pixels``: the samples themselves, flattened (toys, digits, small images);
- ``pca:K``: the first K principal components (scikit-learn PCA fitted on the data);
- ``vae:NAME``: the mean latent of a diffusers ``AutoencoderKL`` (Stable Diffusion's VAE,
  for images), loaded from a local folder or the local Hugging Face cache — never
  downloaded. Missing weights raise :class:`~clusterlens.models.ModelNotFoundError`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from clusterlens.models import ModelNotFoundError

Encoder = Callable[[torch.Tensor], np.ndarray]
ENCODER_FORMS = ("pixels", "pca:K", "vae:NAME")


def make_encoder(name: str, *, device: str = "cpu", batch_size: int = 64) -> Encoder:
    """Build the encoder called ``name``.

    Args:
        name: ``pixels``, ``pca:K`` or ``vae:NAME`` (folder or cached Hugging Face repo id).
        device: Torch device for the VAE.
        batch_size: Images per VAE forward pass.

    Returns:
        A function from an (N, ...) tensor to an (N, D) float32 array.

    Raises:
        ValueError: unknown name or malformed ``pca:K``.
        ModelNotFoundError: the VAE's weights are not on this machine.
    """
    if name == "pixels":
        return lambda samples: samples.reshape(len(samples), -1).numpy().astype(np.float32)
    kind, _, arg = name.partition(":")
    if kind == "pca":
        return _pca_encoder(arg)
    if kind == "vae" and arg:
        vae = load_vae(arg, device=device)
        return lambda samples: encode_with_vae(vae, samples, batch_size=batch_size)
    raise ValueError(f"unknown encoder {name!r}; accepted: {', '.join(ENCODER_FORMS)}")


def _pca_encoder(arg: str) -> Encoder:
    if not arg.isdigit() or int(arg) < 1:
        raise ValueError(f"pca encoder needs a positive component count 'pca:K', got 'pca:{arg}'")
    n_components = int(arg)

    def encode(samples: torch.Tensor) -> np.ndarray:
        from sklearn.decomposition import PCA

        flat = samples.reshape(len(samples), -1).numpy().astype(np.float32)
        if n_components > min(flat.shape):
            raise ValueError(
                f"pca:{n_components} asks for more components than min(samples, dims) = "
                f"{min(flat.shape)}"
            )
        return PCA(n_components=n_components, random_state=0).fit_transform(flat).astype(np.float32)

    return encode


def load_vae(name: str, *, device: str = "cpu"):
    """Load a diffusers ``AutoencoderKL`` from a folder or the local Hugging Face cache.

    Args:
        name: A folder holding ``config.json`` + weights (``save_pretrained`` layout, or a
            pipeline folder with a ``vae/`` subfolder), or a repo id already in the cache
            (e.g. ``stabilityai/sd-vae-ft-mse``).
        device: Torch device.

    Returns:
        The VAE in eval mode.

    Raises:
        ModelNotFoundError: nothing loadable at the path or in the cache.
    """
    from diffusers import AutoencoderKL

    path = Path(name).expanduser()
    subfolder = "vae" if (path / "vae" / "config.json").is_file() else None
    try:
        vae = AutoencoderKL.from_pretrained(
            str(path) if path.exists() else name, subfolder=subfolder, local_files_only=True
        )
    except (OSError, ValueError) as err:
        cache = os.environ.get("HF_HOME", "~/.cache/huggingface")
        raise ModelNotFoundError(
            f"VAE 'vae:{name}' not found: no AutoencoderKL weights at {path} nor in the "
            f"Hugging Face cache ({cache}); clusterlens never downloads weights. Save one "
            f"with AutoencoderKL.save_pretrained(DIR) and pass vae:DIR, or fill the cache "
            f"(huggingface-cli download {name}) on a machine with hub access. ({err})"
        ) from err
    return vae.to(device).eval()


@torch.no_grad()
def encode_with_vae(vae, images: torch.Tensor, *, batch_size: int = 64) -> np.ndarray:
    """Mean latents of (N, 3, H, W) images in [-1, 1], flattened to (N, D) float32."""
    if images.dim() != 4 or images.shape[1] != 3:
        raise ValueError(
            f"the VAE encoder takes RGB images (N, 3, H, W); got shape {tuple(images.shape)} "
            "(use 'pixels' or 'pca:K' for toys and digits)"
        )
    device = next(vae.parameters()).device
    chunks = []
    for start in range(0, len(images), batch_size):
        batch = images[start : start + batch_size].to(device)
        latents = vae.encode(batch).latent_dist.mean
        chunks.append(latents.reshape(len(batch), -1).float().cpu().numpy())
    return np.concatenate(chunks)
