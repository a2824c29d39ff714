"""Image (and text) embedders: open_clip CLIP, transformers CLIP / SigLIP / DINOv2.

Everything loads from disk only -- these machines reach no model hub:

- :func:`load_open_clip` (``open_clip:<spec>``):
    - ``ViT-B-16/laion2b_s34b_b88k``: an open_clip architecture with a pretrained tag
      whose weights are already in the local cache (Hugging Face cache for ``hf_hub``
      tags, ``~/.cache/clip`` for URL tags);
    - ``ViT-B-16//path/to/open_clip_weights.bin``: an architecture and a weights file;
    - ``tiny``: a tiny random ViT CLIP (real open_clip code path, for tests).
- :func:`load_hf_clip` (``hf:<spec>``):
    - a local folder holding ``config.json``, weights and processor files;
    - a Hugging Face id already in the local cache (``local_files_only=True``);
    - ``tiny-clip`` / ``tiny-siglip`` / ``tiny-dinov2``: tiny random models for tests.
    A DINOv2 config gives an image-only bundle (``encode_texts`` raises).

Both return a :class:`ClipBundle` whose ``encode_images`` / ``encode_texts`` give
L2-normalised embeddings without gradients.

Example:
    >>> from clusterlens.models.clip import load_open_clip
    >>> import numpy as np
    >>> bundle = load_open_clip("tiny")
    >>> bundle.encode_images([np.zeros((40, 30, 3), np.uint8)]).shape
    torch.Size([1, 32])
    >>> bundle.encode_texts(["a cat", "a dog"]).shape
    torch.Size([2, 32])
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from clusterlens.models._registry import ModelNotFoundError, UnknownModelError

TINY_OPEN_CLIP = "tiny"
TINY_HF_SPECS = ("tiny-clip", "tiny-siglip", "tiny-dinov2")
_TINY_IMAGE_SIZE = 32
_TINY_EMBED_DIM = 32
_WEIGHT_SUFFIXES = (".bin", ".pt", ".pth", ".safetensors")


@dataclass
class ClipBundle:
    """A loaded embedder with its preprocessing and tokenizer.

    Attributes:
        model: open_clip ``CLIP``, or transformers ``CLIPModel`` / ``SiglipModel`` /
            ``Dinov2Model``.
        preprocess: PIL image -> (3, H, W) float tensor, the model's own transform.
        tokenizer: list of strings -> token tensor (open_clip) or batch encoding (hf);
            ``None`` for image-only models (DINOv2).
        family: ``"open_clip"`` or ``"hf"``.
        name: the spec the bundle was loaded from.
        image_size: side of the square input the model expects.
    """

    model: torch.nn.Module
    preprocess: Callable[[Image.Image], torch.Tensor]
    tokenizer: Callable[[list[str]], Any] | None
    family: str
    name: str
    image_size: int

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def has_text(self) -> bool:
        """Whether :meth:`encode_texts` works (CLIP / SigLIP yes, DINOv2 no)."""
        return self.tokenizer is not None

    def pixel_batch(self, images: Sequence[Any] | torch.Tensor) -> torch.Tensor:
        """Preprocess ``images`` into one (N, 3, H, W) float tensor on the model's device.

        Args:
            images: a list of PIL images or uint8 (H, W, 3) / (H, W) arrays, or an
                already preprocessed (N, 3, H, W) float tensor.
        """
        if isinstance(images, torch.Tensor):
            if images.ndim != 4 or images.shape[1] != 3 or not images.is_floating_point():
                raise ValueError(
                    "a tensor of images must be a preprocessed float (N, 3, H, W) batch, "
                    f"got {tuple(images.shape)} {images.dtype}"
                )
            return images.to(self.device)
        if len(images) == 0:
            raise ValueError("encode_images needs at least one image, got an empty list")
        return torch.stack([self.preprocess(_as_pil(image)) for image in images]).to(self.device)

    @torch.no_grad()
    def encode_images(self, images: Sequence[Any] | torch.Tensor) -> torch.Tensor:
        """(N, D) L2-normalised image embeddings.

        Args:
            images: see :meth:`pixel_batch`.

        Returns:
            Float tensor on the model's device.
        """
        pixels = self.pixel_batch(images)
        if self.family == "open_clip":
            features = self.model.encode_image(pixels)
        elif _is_dinov2(self.model):
            features = self.model(pixel_values=pixels).pooler_output
        else:
            features = _pooled(self.model.get_image_features(pixel_values=pixels))
        return torch.nn.functional.normalize(features.float(), dim=-1)

    @torch.no_grad()
    def encode_texts(self, texts: list[str]) -> torch.Tensor:
        """(N, D) L2-normalised text embeddings.

        Raises:
            ValueError: the model has no text tower (DINOv2) or ``texts`` is empty.
        """
        if self.tokenizer is None:
            raise ValueError(f"{self.name!r} is an image-only model; it cannot encode text")
        if isinstance(texts, str) or not texts:
            raise ValueError(f"encode_texts needs a non-empty list of strings, got {texts!r}")
        tokens = self.tokenizer(list(texts))
        if self.family == "open_clip":
            features = self.model.encode_text(tokens.to(self.device))
        else:
            tokens = {key: value.to(self.device) for key, value in tokens.items()}
            features = _pooled(self.model.get_text_features(**tokens))
        return torch.nn.functional.normalize(features.float(), dim=-1)


def _as_pil(image: Any) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(
            "images must be PIL images or uint8 (H, W, 3) / (H, W) arrays, "
            f"got {array.dtype} array of shape {array.shape}"
        )
    if array.ndim == 3 and array.shape[2] == 4:
        array = array[..., :3]
    if array.ndim == 3 and array.shape[2] != 3:
        raise ValueError(f"colour images must have 3 (or 4) channels, got shape {array.shape}")
    return Image.fromarray(array).convert("RGB")


def _pooled(output: Any) -> torch.Tensor:
    """transformers 5 returns model outputs with the projected features as pooler_output."""
    return output if isinstance(output, torch.Tensor) else output.pooler_output


def _is_dinov2(model: torch.nn.Module) -> bool:
    return getattr(getattr(model, "config", None), "model_type", None) == "dinov2"


# --------------------------------------------------------------------------- open_clip


def load_open_clip(spec: str, device: str = "cpu") -> ClipBundle:
    """Load an open_clip model from disk (never the network).

    Args:
        spec: ``"ARCH/TAG"`` (cached pretrained tag), ``"ARCH//path/to/weights"`` or
            ``"tiny"``; see the module docstring.
        device: torch device.

    Raises:
        UnknownModelError: unknown architecture or tag, or a malformed spec.
        ModelNotFoundError: the weights are not on disk; says where we looked.
    """
    import open_clip

    if spec == TINY_OPEN_CLIP:
        return _tiny_open_clip(device)
    if "/" not in spec:
        raise UnknownModelError(
            f"open_clip spec must be 'ARCH/TAG', 'ARCH//path/to/weights' or 'tiny', got "
            f"{spec!r}; architectures: {', '.join(open_clip.list_models()[:12])}, ..."
        )
    arch, weights = spec.split("/", 1)
    if arch not in open_clip.list_models():
        raise UnknownModelError(f"unknown open_clip architecture {arch!r} in {spec!r}")
    if weights.startswith(("/", ".")) or weights.endswith(_WEIGHT_SUFFIXES):
        checkpoint = Path(weights)
        if not checkpoint.is_file():
            raise ModelNotFoundError(
                f"open_clip weights for {spec!r} not found at {checkpoint}; give an existing file"
            )
    else:
        checkpoint = _cached_open_clip_checkpoint(arch, weights)
    model, _, preprocess = open_clip.create_model_and_transforms(
        arch, pretrained=str(checkpoint), device=device
    )
    model.eval()
    return ClipBundle(
        model=model,
        preprocess=preprocess,
        tokenizer=open_clip.get_tokenizer(arch),
        family="open_clip",
        name=spec,
        image_size=_open_clip_image_size(model),
    )


def _cached_open_clip_checkpoint(arch: str, tag: str) -> Path:
    """Where the weights of a pretrained tag already are on disk, or ModelNotFoundError."""
    import open_clip
    from open_clip.pretrained import get_pretrained_cfg

    config = get_pretrained_cfg(arch, tag)
    if not config:
        raise UnknownModelError(
            f"open_clip has no pretrained tag {tag!r} for {arch!r}; tags: "
            f"{', '.join(open_clip.list_pretrained_tags_by_model(arch))}"
        )
    looked: list[str] = []
    hub = config.get("hf_hub", "")
    if hub:
        from huggingface_hub import try_to_load_from_cache

        # open_clip's convention: 'org/repo/file.bin', or 'org/repo/' for the default file
        repo_id, filename = os.path.split(hub)
        filename = filename or "open_clip_pytorch_model.bin"
        for candidate in (filename.rsplit(".", 1)[0] + ".safetensors", filename):
            found = try_to_load_from_cache(repo_id, candidate)
            looked.append(f"HF cache {repo_id}/{candidate}")
            if isinstance(found, str):
                return Path(found)
    url = config.get("url", "")
    if url:
        target = Path("~/.cache/clip").expanduser() / os.path.basename(url)
        looked.append(str(target))
        if target.is_file():
            return target
    raise ModelNotFoundError(
        f"open_clip weights for {arch}/{tag} are not on this machine (looked in: "
        f"{'; '.join(looked)}; HF cache = $HF_HUB_CACHE or $HF_HOME/hub). Download them "
        f"elsewhere and pass 'open_clip:{arch}//path/to/weights.bin'."
    )


def _open_clip_image_size(model: torch.nn.Module) -> int:
    size = getattr(model.visual, "image_size", _TINY_IMAGE_SIZE)
    return int(size[0] if isinstance(size, tuple | list) else size)


def _tiny_open_clip(device: str) -> ClipBundle:
    """A 1-layer ViT CLIP with random weights; the real open_clip classes and transforms."""
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    torch.manual_seed(0)
    vision = CLIPVisionCfg(layers=1, width=32, head_width=16, patch_size=8, image_size=32)
    text = CLIPTextCfg(context_length=16, vocab_size=49408, width=32, heads=2, layers=1)
    model = CLIP(embed_dim=_TINY_EMBED_DIM, vision_cfg=vision, text_cfg=text).to(device).eval()
    preprocess = open_clip.image_transform(_TINY_IMAGE_SIZE, is_train=False)
    base_tokenizer = open_clip.get_tokenizer("ViT-B-16")  # bundled BPE vocabulary, offline

    def tokenizer(texts: list[str]) -> torch.Tensor:
        return base_tokenizer(texts, context_length=text.context_length)

    return ClipBundle(model, preprocess, tokenizer, "open_clip", TINY_OPEN_CLIP, _TINY_IMAGE_SIZE)


# ------------------------------------------------------------------------ transformers


def load_hf_clip(spec: str, device: str = "cpu") -> ClipBundle:
    """Load a transformers CLIP / SigLIP / DINOv2 model from disk.

    Args:
        spec: a local folder, a Hugging Face id in the local cache, or one of
            ``tiny-clip``, ``tiny-siglip``, ``tiny-dinov2``.
        device: torch device.

    Raises:
        ModelNotFoundError: not on disk; says where we looked.
        UnknownModelError: on disk, but not a CLIP / SigLIP / DINOv2 model.
    """
    if spec in TINY_HF_SPECS:
        return _tiny_hf(spec, device)
    from transformers import AutoConfig, AutoImageProcessor, AutoModel, AutoTokenizer

    if not spec:
        raise UnknownModelError("hf: needs a folder, a cached hub id or " + str(TINY_HF_SPECS))
    try:
        config = AutoConfig.from_pretrained(spec, local_files_only=True)
        if config.model_type not in ("clip", "siglip", "dinov2"):
            raise UnknownModelError(
                f"hf:{spec} is a {config.model_type!r} model; hf: loads clip, siglip, dinov2"
            )
        model = AutoModel.from_pretrained(spec, local_files_only=True, dtype=torch.float32)
        processor = AutoImageProcessor.from_pretrained(spec, local_files_only=True)
        tokenizer = (
            None
            if config.model_type == "dinov2"
            else AutoTokenizer.from_pretrained(spec, local_files_only=True)
        )
    except OSError as err:
        raise ModelNotFoundError(
            f"hf:{spec} is neither a model folder nor in the local Hugging Face cache "
            f"({_hf_cache_dir()}); set HF_HOME / HF_HUB_CACHE or pass a folder ({err})"
        ) from err
    return _hf_bundle(model.to(device).eval(), processor, tokenizer, spec)


def _hf_cache_dir() -> Path:
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home).expanduser() / "hub"


def _hf_bundle(model: torch.nn.Module, processor: Any, tokenizer: Any, name: str) -> ClipBundle:
    crop = getattr(processor, "crop_size", None) or processor.size
    image_size = int(crop.get("height") or crop.get("shortest_edge"))

    def preprocess(image: Image.Image) -> torch.Tensor:
        return processor(images=image, return_tensors="pt")["pixel_values"][0]

    text_tokenizer = None
    if tokenizer is not None:
        # SigLIP was trained with max_length padding; CLIP pads to the longest text.
        padding = "max_length" if model.config.model_type == "siglip" else True

        def text_tokenizer(texts: list[str]) -> Any:
            return tokenizer(texts, padding=padding, truncation=True, return_tensors="pt")

    return ClipBundle(model, preprocess, text_tokenizer, "hf", name, image_size)


def _tiny_word_tokenizer(max_length: int) -> Any:
    """A word-level fast tokenizer over a small vocabulary (real ones need a download)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    words = "a an the photo of cat dog car person tree road sky building red green blue".split()
    vocab = {"<pad>": 0, "<unk>": 1, "<s>": 2, "</s>": 3} | {
        word: index + 4 for index, word in enumerate(words)
    }
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.normalizer = normalizers.Lowercase()
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    # CLIP's text tower pools at the end-of-text token, so every text must carry one
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", special_tokens=[("<s>", 2), ("</s>", 3)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        pad_token="<pad>",
        unk_token="<unk>",
        bos_token="<s>",
        eos_token="</s>",
        model_max_length=max_length,
    )


def _tiny_hf(spec: str, device: str) -> ClipBundle:
    """Tiny random CLIP / SigLIP / DINOv2 with the real transformers classes."""
    from transformers import (
        BitImageProcessor,
        CLIPConfig,
        CLIPImageProcessor,
        CLIPModel,
        Dinov2Config,
        Dinov2Model,
        SiglipConfig,
        SiglipImageProcessor,
        SiglipModel,
    )

    torch.manual_seed(0)
    size = _TINY_IMAGE_SIZE
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        image_size=size,
        patch_size=8,
    )
    text = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        vocab_size=32,
        max_position_embeddings=16,
        pad_token_id=0,
        bos_token_id=2,
        eos_token_id=3,
    )
    tokenizer = _tiny_word_tokenizer(max_length=16)
    if spec == "tiny-clip":
        config = CLIPConfig(text_config=text, vision_config=vision, projection_dim=_TINY_EMBED_DIM)
        model = CLIPModel(config)
        processor = CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    elif spec == "tiny-siglip":
        model = SiglipModel(SiglipConfig(text_config=text, vision_config=vision))
        processor = SiglipImageProcessor(size={"height": size, "width": size})
    else:
        model = Dinov2Model(Dinov2Config(**vision, layerscale_value=1.0))
        processor = BitImageProcessor(
            size={"shortest_edge": size},
            crop_size={"height": size, "width": size},
            image_mean=[0.485, 0.456, 0.406],
            image_std=[0.229, 0.224, 0.225],
        )
        tokenizer = None
    return _hf_bundle(model.to(device).eval(), processor, tokenizer, spec)


def list_open_clip_specs() -> list[str]:
    """Specs :func:`load_open_clip` knows without looking at the disk."""
    return [TINY_OPEN_CLIP]


def list_hf_specs() -> list[str]:
    """Specs :func:`load_hf_clip` knows without looking at the disk."""
    return list(TINY_HF_SPECS)
