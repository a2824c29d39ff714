"""SCLIP-style dense CLIP: correlative self-attention in the last block, sliding windows.

CLIP's last attention block mixes every patch with the global image (its CLS-style
attention), so patch tokens carry little about *where* a class is. SCLIP (Wang et al.,
"SCLIP: Rethinking Self-Attention for Dense Vision-Language Inference", 2023) replaces
that block's attention with *correlative* self-attention -- ``softmax(q q^T) +
softmax(k k^T)`` -- and drops its residual and MLP, so each patch attends to patches
like itself. The patch tokens then go through the final norm and projection into the
text space and are compared with the class prompts.

Here, over open_clip ``VisionTransformer`` and transformers ``CLIPModel`` and
``SiglipModel`` (whose patches go one by one through its attention pooling head, see
:func:`_siglip_patches`):

- prompt templates (:data:`TEMPLATES`) averaged per class;
- sliding-window inference: the image is resized so its short side is ``short_side``
  and cut into ``window`` x ``window`` crops every ``stride`` pixels; each crop's patch
  cosines are upsampled into place and averaged.

The image side (:meth:`DenseClip.image_windows`) does not depend on the class names,
so it is computed once per image and every list of names costs only the text tower
and a matrix product (:meth:`DenseClip.cosines`). Two users share this one module:
``segment`` (:class:`clusterlens.segment.clip_dense.ClipDensePredictor`, MHQR's dense
class scores) and ``relevance`` (:mod:`clusterlens.relevance.open_vocab`, query
coupling for ``select`` and ``ask``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

TEMPLATES = (
    "a photo of a {}.",
    "a photo of the {}.",
    "a bright photo of a {}.",
    "a cropped photo of a {}.",
    "there is a {} in the scene.",
    "a photo of a small {}.",
    "a photo of a large {}.",
)


def load_clip_bundle(name: str, device: str = "cpu") -> Any:
    """``open_clip:<spec>`` or ``hf:<spec>`` through :mod:`clusterlens.models.clip`.

    Raises:
        ValueError: a name of another source.
    """
    from clusterlens.models.clip import load_hf_clip, load_open_clip

    source, _, spec = name.partition(":")
    if source == "open_clip":
        return load_open_clip(spec, device)
    if source == "hf":
        return load_hf_clip(spec, device)
    raise ValueError(f"dense CLIP needs an 'open_clip:<spec>' or 'hf:<spec>' name, got {name!r}")


def _correlative_attention(
    x: torch.Tensor, q_w, q_b, k_w, k_b, v_w, v_b, heads: int
) -> torch.Tensor:
    """SCLIP attention of (B, N, C) tokens: softmax(q q^T) + softmax(k k^T), times v."""
    batch, tokens, width = x.shape
    head = width // heads

    def split(weight, bias):
        return F.linear(x, weight, bias).reshape(batch, tokens, heads, head).transpose(1, 2)

    q, k, v = split(q_w, q_b), split(k_w, k_b), split(v_w, v_b)
    scale = head**-0.5
    attention = torch.softmax(q @ q.transpose(-2, -1) * scale, dim=-1)
    attention = attention + torch.softmax(k @ k.transpose(-2, -1) * scale, dim=-1)
    return (attention @ v).transpose(1, 2).reshape(batch, tokens, width)


def _open_clip_patches(visual: Any, pixels: torch.Tensor) -> torch.Tensor:
    """(B, gh, gw, D) projected patch tokens of an open_clip VisionTransformer."""
    x = visual.conv1(pixels)
    grid = x.shape[-2:]
    x = x.flatten(2).transpose(1, 2)
    cls = visual.class_embedding.to(x.dtype).expand(x.shape[0], 1, -1)
    x = torch.cat([cls, x], dim=1) + _positions(visual.positional_embedding, grid)
    x = visual.ln_pre(visual.patch_dropout(x))
    blocks = visual.transformer.resblocks
    batch_first = getattr(visual.transformer, "batch_first", True)
    if not batch_first:
        x = x.transpose(0, 1)
    for block in blocks[:-1]:
        x = block(x)
    if not batch_first:
        x = x.transpose(0, 1)
    last = blocks[-1]
    attn = last.attn
    weights, biases = attn.in_proj_weight.chunk(3), attn.in_proj_bias.chunk(3)
    y = _correlative_attention(
        last.ln_1(x),
        weights[0],
        biases[0],
        weights[1],
        biases[1],
        weights[2],
        biases[2],
        attn.num_heads,
    )
    x = attn.out_proj(y)  # SCLIP: no residual, no MLP in the last block
    x = visual.ln_post(x[:, 1:])
    if visual.proj is not None:
        x = x @ visual.proj
    return x.reshape(x.shape[0], *grid, -1)


def _hf_patches(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """(B, gh, gw, D) projected patch tokens of a transformers CLIPModel."""
    vision = model.vision_model
    patch = vision.config.patch_size
    grid = (pixels.shape[-2] // patch, pixels.shape[-1] // patch)
    x = vision.embeddings(pixels, interpolate_pos_encoding=True)
    x = vision.pre_layrnorm(x)
    x = vision.post_layernorm(_hf_correlative_tokens(vision, x)[:, 1:])
    x = model.visual_projection(x)
    return x.reshape(x.shape[0], *grid, -1)


def _hf_correlative_tokens(vision: Any, x: torch.Tensor) -> torch.Tensor:
    """A transformers vision tower's blocks, the last with SCLIP's correlative attention
    in place of its own (and without its MLP), as the last block's output projection."""
    layers = vision.encoder.layers
    for layer in layers[:-1]:
        out = layer(x, None)
        x = out[0] if isinstance(out, tuple) else out
    last = layers[-1]
    attn = last.self_attn
    y = _correlative_attention(
        last.layer_norm1(x),
        attn.q_proj.weight, attn.q_proj.bias, attn.k_proj.weight, attn.k_proj.bias,
        attn.v_proj.weight, attn.v_proj.bias, attn.num_heads,
    )  # fmt: skip
    return attn.out_proj(y)


def _siglip_patches(model: Any, pixels: torch.Tensor) -> torch.Tensor:
    """(B, gh, gw, D) patch tokens of a transformers SiglipModel in its text space.

    SigLIP has no class token and no projection: its image embedding is an attention
    pooling head (a learned probe attending over the patches, then an MLP). Each patch is
    sent through that head on its own, as MaskCLIP does with CLIP's attention pool: with
    a single key the attention is the identity, so a patch becomes the head's value and
    output projections of itself, plus the head's MLP residual.
    """
    vision = model.vision_model
    patch = vision.config.patch_size
    grid = (pixels.shape[-2] // patch, pixels.shape[-1] // patch)
    x = vision.embeddings(pixels, interpolate_pos_encoding=True)
    x = vision.post_layernorm(_hf_correlative_tokens(vision, x))
    head = vision.head
    pool = head.attention
    value_w = pool.in_proj_weight.chunk(3)[2]
    value_b = pool.in_proj_bias.chunk(3)[2]
    x = pool.out_proj(F.linear(x, value_w, value_b))
    x = x + head.mlp(head.layernorm(x))
    return x.reshape(x.shape[0], *grid, -1)


def _positions(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """open_clip's positional table resized (bicubic) to a patch grid of another size."""
    cls, patches = table[:1], table[1:]
    side = int(math.sqrt(len(patches)))
    if (side, side) == tuple(grid):
        return table
    square = patches.reshape(1, side, side, -1).permute(0, 3, 1, 2)
    resized = F.interpolate(square, size=grid, mode="bicubic", align_corners=False)
    return torch.cat([cls, resized.permute(0, 2, 3, 1).reshape(-1, table.shape[-1])])


@dataclass
class ImageWindows:
    """The query-free half of dense CLIP on one image: unit patch embeddings per window.

    Attributes:
        size: (H, W) of the image the cosines are returned at.
        resized: (h, w) of the resized image the windows were cut from.
        windows: (top, left, side_h, side_w, patches (gh, gw, D)) per window.
    """

    size: tuple[int, int]
    resized: tuple[int, int]
    windows: list[tuple[int, int, int, int, torch.Tensor]]


class DenseClip:
    """Dense patch-text cosines of a CLIP ViT by sliding windows (SCLIP attention).

    Args:
        bundle: a :class:`clusterlens.models.clip.ClipBundle` with a ViT CLIP (open_clip,
            transformers ``CLIPModel`` or ``SiglipModel``).
        templates: prompt templates with one ``{}`` for the class name.
        window: sliding-window side in pixels (default: the model's input size).
        stride: window step (default: half the window).
        short_side: the image is resized so its short side is this (default: 2 windows).
        logit_scale: multiplies cosines before a softmax over classes.

    Raises:
        ValueError: an image-only bundle, an hf model that is neither CLIP nor SigLIP,
            or a template without ``{}``.
    """

    def __init__(
        self,
        bundle: Any,
        templates: Sequence[str] = TEMPLATES,
        window: int | None = None,
        stride: int | None = None,
        short_side: int | None = None,
        logit_scale: float = 40.0,
    ) -> None:
        if not bundle.has_text:
            raise ValueError(
                f"{bundle.family}:{bundle.name} has no text tower (an image-only model); dense "
                "CLIP needs a CLIP with text (open_clip ViT, or transformers CLIPModel)"
            )
        kind = getattr(getattr(bundle.model, "config", None), "model_type", None)
        if bundle.family == "hf" and kind not in ("clip", "siglip"):
            raise ValueError(
                f"hf:{bundle.name} is a {kind!r} model: dense CLIP needs a CLIP or SigLIP "
                "(transformers CLIPModel / SiglipModel, or any open_clip ViT)"
            )
        if not templates or any("{}" not in template for template in templates):
            raise ValueError(f"templates must each hold '{{}}', got {list(templates)!r}")
        self.bundle = bundle
        self.templates = tuple(templates)
        self.window = window or bundle.image_size
        self.stride = stride or max(1, self.window // 2)
        self.short_side = short_side or 2 * self.window
        self.logit_scale = logit_scale
        self.name = f"{bundle.family}:{bundle.name}"
        # Every image of a data set asks for the same names and the same statistics:
        # the text tower runs once per name list, the preprocess probe once.
        self._text: dict[tuple[str, ...], torch.Tensor] = {}
        self._stats: tuple[torch.Tensor, torch.Tensor] | None = None

    @torch.no_grad()
    def text_embeddings(self, class_names: Sequence[str]) -> torch.Tensor:
        """(K, D) unit class embeddings, each the mean over the templates (cached per list)."""
        key = tuple(class_names)
        if key not in self._text:
            rows = []
            for name in key:
                texts = [template.format(name) for template in self.templates]
                rows.append(F.normalize(self.bundle.encode_texts(texts).mean(dim=0), dim=0))
            self._text[key] = torch.stack(rows)
        return self._text[key]

    @torch.no_grad()
    def patch_embeddings(self, pixels: torch.Tensor) -> torch.Tensor:
        """(B, gh, gw, D) unit patch embeddings of normalised (B, 3, H, W) pixels."""
        model = self.bundle.model
        if self.bundle.family == "open_clip":
            patches = _open_clip_patches(model.visual, pixels)
        elif model.config.model_type == "siglip":
            patches = _siglip_patches(model, pixels)
        else:
            patches = _hf_patches(model, pixels)
        return F.normalize(patches.float(), dim=-1)

    @torch.no_grad()
    def image_windows(self, rgb: np.ndarray) -> ImageWindows:
        """Patch embeddings of every sliding window of ``rgb`` ((H, W, 3) float in [0, 1])."""
        pixels = self.normalised(rgb)
        height, width = pixels.shape[-2:]
        windows = []
        for top in _starts(height, self.window, self.stride):
            for left in _starts(width, self.window, self.stride):
                crop = pixels[:, :, top : top + self.window, left : left + self.window]
                patches = self.patch_embeddings(crop)[0]
                windows.append((top, left, crop.shape[-2], crop.shape[-1], patches))
        return ImageWindows(tuple(rgb.shape[:2]), (height, width), windows)

    @torch.no_grad()
    def cosines(self, windows: ImageWindows, text: torch.Tensor) -> torch.Tensor:
        """(K, H, W) patch-text cosines at the image's size: each window's cosines are
        upsampled into place and overlapping windows averaged."""
        height, width = windows.resized
        total = torch.zeros(len(text), height, width, device=text.device)
        counts = torch.zeros(1, height, width, device=text.device)
        for top, left, side_h, side_w, patches in windows.windows:
            cosine = (patches @ text.T).permute(2, 0, 1)
            upsampled = F.interpolate(
                cosine[None], size=(side_h, side_w), mode="bilinear", align_corners=False
            )[0]
            total[:, top : top + side_h, left : left + side_w] += upsampled
            counts[:, top : top + side_h, left : left + side_w] += 1
        mean = total / counts.clamp_min(1)
        return F.interpolate(mean[None], size=windows.size, mode="bilinear", align_corners=False)[0]

    def probabilities(self, windows: ImageWindows, class_names: Sequence[str]) -> torch.Tensor:
        """(K, H, W) softmax(``logit_scale`` x cosine) over ``class_names``."""
        text = self.text_embeddings(class_names).to(self.bundle.device)
        return torch.softmax(self.logit_scale * self.cosines(windows, text), dim=0)

    def normalised(self, rgb: np.ndarray) -> torch.Tensor:
        """The image resized to ``short_side`` and normalised like the model's own input."""
        height, width = rgb.shape[:2]
        factor = self.short_side / min(height, width)
        size = (max(self.window, round(height * factor)), max(self.window, round(width * factor)))
        tensor = torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1)))[None]
        tensor = F.interpolate(tensor.float(), size=size, mode="bilinear", align_corners=False)
        mean, std = self._mean_std()
        return ((tensor - mean) / std).to(self.bundle.device)

    def _mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._stats is None:
            self._stats = self._probe_mean_std()
        return self._stats

    def _probe_mean_std(self) -> tuple[torch.Tensor, torch.Tensor]:
        # The bundle's own preprocess knows the statistics: apply it to flat black / white.
        from PIL import Image

        probe = self.bundle.preprocess(Image.new("RGB", (self.window, self.window), (0, 0, 0)))
        white = self.bundle.preprocess(
            Image.new("RGB", (self.window, self.window), (255, 255, 255))
        )
        black, bright = probe[:, 0, 0], white[:, 0, 0]
        std = 1.0 / (bright - black)
        mean = -black * std
        return mean.view(1, 3, 1, 1).float(), std.view(1, 3, 1, 1).float()


def _starts(length: int, window: int, stride: int) -> list[int]:
    """Window offsets covering ``length`` (the last window flush with the end)."""
    if length <= window:
        return [0]
    starts = list(range(0, length - window, stride))
    return starts + [length - window]
