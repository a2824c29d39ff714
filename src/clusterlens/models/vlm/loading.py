"""Load a VLM with its processor and pruning adapter -- from disk only, never the hub.

Names:
    - a local folder holding ``config.json``, the weights and the processor files;
    - a Hugging Face id (``Qwen/Qwen2-VL-2B-Instruct``) already in the local cache
      (``$HF_HOME/hub``, default ``~/.cache/huggingface/hub``), loaded with
      ``local_files_only=True``;
    - ``tiny:<family>`` (``tiny:qwen2_vl``, ``tiny:qwen2_5_vl``, ``tiny:qwen3_vl``,
      ``tiny:llava``): a tiny model with *random* weights for trying the pipeline;
      its answers are nonsense and the report says so.

A model that is not on disk is a :class:`ModelNotFoundError` saying where we looked
and how to provide it.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from clusterlens.models._registry import ModelNotFoundError, UnknownModelError
from clusterlens.models.vlm._base import PruningAdapter
from clusterlens.models.vlm.llava import LlavaAdapter, LlavaNextAdapter
from clusterlens.models.vlm.qwen import QWEN_MODEL_TYPES, QwenVLAdapter

TINY_PREFIX = "tiny:"
SUPPORTED_MODEL_TYPES = (*QWEN_MODEL_TYPES, "llava", "llava_next")


@dataclass
class LoadedVLM:
    """A model, its processor and the adapter that prunes its image tokens."""

    name: str
    model: torch.nn.Module
    processor: Any
    adapter: PruningAdapter
    random_weights: bool = False

    def prompt(self, question: str, images: int = 1) -> str:
        """The model's chat prompt for ``images`` images followed by ``question``.

        Uses the processor's chat template when it has one (real checkpoints do);
        the tiny models have none and get the plain layout their tokenizer knows.
        """
        if getattr(self.processor, "chat_template", None):
            content = [{"type": "image"}] * images + [{"type": "text", "text": question}]
            return self.processor.apply_chat_template(
                [{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False
            )
        if isinstance(self.adapter, LlavaAdapter):
            return "user : " + "<image> " * images + f"{question} assistant :"
        block = "<|vision_start|> <|image_pad|> <|vision_end|> "
        return "user : " + block * images + f"{question} assistant :"

    def batch(self, image: Any, question: str, extra_images: Sequence[Any] = ()) -> Any:
        """The processor's output for an (H, W, 3) image (and more images) and ``question``."""
        images = [image, *extra_images]
        return self.processor(
            images=images, text=[self.prompt(question, len(images))], return_tensors="pt"
        )

    def stop_token_ids(self) -> list[int]:
        """End-of-turn tokens: the generation config's and the tokenizer's EOS."""
        ids = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        stops = [ids] if isinstance(ids, int) else list(ids or [])
        eos = getattr(getattr(self.processor, "tokenizer", None), "eos_token_id", None)
        return sorted({*stops, *([eos] if eos is not None else [])})

    def decode(self, token_ids: torch.Tensor) -> str:
        return self.processor.tokenizer.decode(token_ids, skip_special_tokens=True).strip()


def adapter_for(model: torch.nn.Module) -> PruningAdapter:
    """The pruning adapter of ``model``'s family.

    Raises:
        ValueError: the family is not supported.
    """
    model_type = getattr(model.config, "model_type", None)
    if model_type in QWEN_MODEL_TYPES:
        return QwenVLAdapter(model)
    if model_type == "llava":
        return LlavaAdapter(model)
    if model_type == "llava_next":
        return LlavaNextAdapter(model)
    raise ValueError(
        f"no pruning adapter for model type {model_type!r}; supported: {SUPPORTED_MODEL_TYPES}"
    )


def load_vlm(name: str, *, device: str = "cpu", dtype: torch.dtype | None = None) -> LoadedVLM:
    """Load ``name`` (local folder, cached Hugging Face id, or ``tiny:<family>``).

    Args:
        name: see the module docstring.
        device: torch device for the model.
        dtype: weights dtype (default: the checkpoint's, float32 on CPU is safest).

    Raises:
        ModelNotFoundError: the model is not on this machine.
        UnknownModelError: it is there but is not a supported VLM.
    """
    if name.startswith(TINY_PREFIX):
        return _load_tiny(name[len(TINY_PREFIX) :])
    from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor

    source = _checked_source(name)
    try:
        config = AutoConfig.from_pretrained(source, local_files_only=True)
    except OSError as err:
        raise ModelNotFoundError(_not_found_message(name, err)) from err
    if config.model_type not in SUPPORTED_MODEL_TYPES:
        raise UnknownModelError(
            f"{name!r} is a {config.model_type!r} model; clusterlens can prune "
            f"{SUPPORTED_MODEL_TYPES}"
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(
            source, local_files_only=True, dtype=dtype or torch.float32
        )
        processor = AutoProcessor.from_pretrained(source, local_files_only=True)
    except OSError as err:
        raise ModelNotFoundError(_not_found_message(name, err)) from err
    model = model.to(device).eval()
    return LoadedVLM(name, model, processor, adapter_for(model))


def hf_cache_dir() -> Path:
    """Where cached Hugging Face ids are looked up (``$HF_HUB_CACHE`` or ``$HF_HOME/hub``)."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"]).expanduser()
    home = os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface"
    return Path(home).expanduser() / "hub"


def list_cached_vlms() -> list[str]:
    """Hugging Face ids in the local cache whose name suggests a supported VLM."""
    cache = hf_cache_dir()
    if not cache.is_dir():
        return []
    names = [p.name[len("models--") :].replace("--", "/") for p in cache.glob("models--*")]
    hints = ("qwen2-vl", "qwen2.5-vl", "qwen3-vl", "llava")  # llava-v1.6 = LLaVA-NeXT
    return sorted(n for n in names if any(h in n.lower() for h in hints))


def _checked_source(name: str) -> str:
    path = Path(name).expanduser()
    looks_like_path = name.startswith((".", "/", "~")) or path.exists()
    if looks_like_path:
        if not (path / "config.json").is_file():
            raise ModelNotFoundError(
                f"{path} is not a model folder (no config.json there); a VLM folder holds "
                "config.json, the weights (*.safetensors) and the processor/tokenizer files, "
                "as written by save_pretrained or `hf download`"
            )
        return str(path)
    if name.count("/") != 1:
        raise ModelNotFoundError(
            f"{name!r} is neither an existing folder nor a Hugging Face id 'org/name'"
        )
    return name


def _not_found_message(name: str, err: Exception) -> str:
    cached = list_cached_vlms()
    return (
        f"VLM {name!r} is not available on this machine (no download is attempted). "
        f"Looked for a folder named {name!r} (none) and for {name!r} in the Hugging Face "
        f"cache {hf_cache_dir()}. "
        "Provide it as a local folder (--vlm /path/to/model, made with save_pretrained or "
        "`hf download <id> --local-dir ...` on a machine with network), or point HF_HOME "
        "at a cache that holds it. "
        + (f"Cached VLMs here: {', '.join(cached)}. " if cached else "No VLM is cached here. ")
        + "For a pipeline check with random weights use tiny:qwen2_vl or tiny:llava. "
        + f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
    )


def _load_tiny(family: str) -> LoadedVLM:
    from clusterlens.models.vlm.tiny import TINY_FAMILIES, tiny_vlm

    if family not in TINY_FAMILIES:
        raise UnknownModelError(
            f"unknown tiny VLM {family!r}; choose from "
            f"{', '.join(TINY_PREFIX + f for f in TINY_FAMILIES)}"
        )
    bundle = tiny_vlm(family)
    return LoadedVLM(
        TINY_PREFIX + family,
        bundle.model,
        bundle.processor,
        adapter_for(bundle.model),
        random_weights=True,
    )


def list_vlm_specs() -> list[str]:
    """Specs ``load_vlm`` accepts without a path: the tiny models and the cached VLMs.

    Meant for the model registry: ``register_loader("vlm", load_vlm,
    list_specs=list_vlm_specs, ...)`` makes ``load_model("vlm:tiny:qwen2_vl")`` work.
    """
    from clusterlens.models.vlm.tiny import TINY_FAMILIES

    return [TINY_PREFIX + family for family in TINY_FAMILIES] + list_cached_vlms()
