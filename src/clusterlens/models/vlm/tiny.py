"""Tiny random VLMs with their real processors, built offline (tests, benchmarks, docs).

Each bundle is the real transformers architecture with a tiny random configuration
(hidden size 32, 2 decoder layers, a 1-2 block vision tower) and a real processor
built from its parts: the family's image processor from its constructor and a
word-level tokenizer over a small vocabulary (the real tokenizers need a download).
The weights are random, so answers are nonsense; the code path is the real one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

VOCAB_SIZE = 128
WORDS = (
    "<unk> <pad> </s> user assistant : what is in the image ? a red square blue circle "
    "left right top bottom color of where how many"
).split()
QWEN_SPECIAL = {
    "<|image_pad|>": 100,
    "<|video_pad|>": 101,
    "<|vision_start|>": 102,
    "<|vision_end|>": 103,
}
LLAVA_IMAGE_TOKEN = "<image>"
LLAVA_IMAGE_ID = 100
LLAVA_PROMPT = "user : <image> what is in the image ? assistant :"
TINY_FAMILIES = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl", "llava", "llava_next")


@dataclass
class TinyVLM:
    """A tiny model, its processor, a sample image and a prompt that fits the processor."""

    family: str
    model: torch.nn.Module
    processor: Any
    image: np.ndarray
    prompt: str

    def batch(self, image: np.ndarray | None = None, prompt: str | None = None) -> Any:
        """The processor's output for one image and one prompt."""
        return self.processor(
            images=[self.image if image is None else image],
            text=[self.prompt if prompt is None else prompt],
            return_tensors="pt",
        )


def sample_image(height: int = 112, width: int = 168) -> np.ndarray:
    """A blue image with a red square top left: (H, W, 3) uint8."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    image[..., 2] = 200
    image[: height // 2, : width // 3] = (220, 30, 30)
    return image


def tiny_tokenizer(special: dict[str, int]) -> Any:
    """A word-level fast tokenizer (whitespace split) with the given special tokens."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {word: index for index, word in enumerate(WORDS)} | special
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        unk_token="<unk>",
        pad_token="<pad>",
        eos_token="</s>",
        additional_special_tokens=list(special),
    )


def tiny_vlm(family: str, seed: int = 0, text: dict[str, Any] | None = None) -> TinyVLM:
    """Build the tiny bundle of ``family`` (one of :data:`TINY_FAMILIES`).

    Args:
        family: the model family.
        seed: torch seed for the random weights.
        text: overrides of the language model config (the benchmark's larger
            configuration: ``hidden_size``, ``intermediate_size``, ``num_hidden_layers``,
            ``num_attention_heads``, ``num_key_value_heads``).
    """
    if family == "llava":
        return tiny_llava(seed, text=text)
    if family == "llava_next":
        return tiny_llava_next(seed, text=text)
    return tiny_qwen_vl(family, seed, text=text)


def _text_config(text: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "vocab_size": VOCAB_SIZE,
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "bos_token_id": None,
        "eos_token_id": 2,
        "pad_token_id": 1,
        **extra,
        **(text or {}),
    }


def _mrope_section(text: dict[str, Any]) -> list[int]:
    """(t, h, w) rotary frequencies: Qwen's 16:24:24 split of head_dim / 2 when it divides."""
    config = _text_config(text)
    half = config["hidden_size"] // config["num_attention_heads"] // 2
    if half % 16 == 0:
        return [half // 4, 3 * half // 8, 3 * half // 8]
    if half == 4:
        return [1, 1, 2]
    raise ValueError(f"tiny configs need head_dim 8 or a multiple of 32, got {2 * half}")


def _tiny_vision(out_hidden: int, **extra: Any) -> dict[str, Any]:
    """The two-block vision tower shared by the tiny Qwen2.5-VL and Qwen3-VL configs."""
    base = {"depth": 2, "hidden_size": 16, "intermediate_size": 32, "num_heads": 2}
    return base | {"out_hidden_size": out_hidden} | extra


def tiny_qwen_vl(
    family: str = "qwen2_vl", seed: int = 0, text: dict[str, Any] | None = None
) -> TinyVLM:
    """Tiny Qwen2-VL / Qwen2.5-VL / Qwen3-VL with a real ``*Processor``."""
    import transformers as tf

    tokens = {f"{key}_token_id": value for key, value in _qwen_ids().items()}
    rope = {"rope_type": "default", "rope_theta": 10000.0, "mrope_section": _mrope_section(text)}
    hidden = _text_config(text)["hidden_size"]
    if family == "qwen2_vl":
        config = tf.Qwen2VLConfig(
            text_config=_text_config(text, rope_parameters=rope),
            vision_config={"depth": 1, "embed_dim": 16, "hidden_size": hidden, "num_heads": 2},
            **tokens,
        )
        model_class, patch = tf.Qwen2VLForConditionalGeneration, 14
        processor_class, video = tf.Qwen2VLProcessor, tf.Qwen2VLVideoProcessor
    elif family == "qwen2_5_vl":
        config = tf.Qwen2_5_VLConfig(
            text_config=_text_config(text, rope_parameters=rope),
            vision_config=_tiny_vision(hidden, window_size=56, fullatt_block_indexes=[1]),
            **tokens,
        )
        model_class, patch = tf.Qwen2_5_VLForConditionalGeneration, 14
        processor_class, video = tf.Qwen2_5_VLProcessor, tf.Qwen2VLVideoProcessor
    elif family == "qwen3_vl":
        rope = rope | {"mrope_interleaved": True}
        config = tf.Qwen3VLConfig(
            text_config=_text_config(
                text,
                rope_parameters=rope,
                head_dim=hidden // _text_config(text)["num_attention_heads"],
            ),
            vision_config=_tiny_vision(
                hidden, num_position_embeddings=64, deepstack_visual_indexes=[0]
            ),
            **tokens,
        )
        model_class, patch = tf.Qwen3VLForConditionalGeneration, 16
        processor_class, video = tf.Qwen3VLProcessor, tf.Qwen3VLVideoProcessor
    else:
        raise ValueError(f"unknown tiny Qwen family {family!r}; choose from {TINY_FAMILIES[:3]}")
    torch.manual_seed(seed)
    model = model_class(config).eval()
    processor = processor_class(
        image_processor=tf.Qwen2VLImageProcessor(patch_size=patch, merge_size=2),
        tokenizer=tiny_tokenizer(QWEN_SPECIAL),
        video_processor=video(),
    )
    prompt = (
        "user : <|vision_start|> <|image_pad|> <|vision_end|> what is in the image ? assistant :"
    )
    return TinyVLM(family, model, processor, sample_image(), prompt)


def _qwen_ids() -> dict[str, int]:
    return {
        "image": QWEN_SPECIAL["<|image_pad|>"],
        "video": QWEN_SPECIAL["<|video_pad|>"],
        "vision_start": QWEN_SPECIAL["<|vision_start|>"],
        "vision_end": QWEN_SPECIAL["<|vision_end|>"],
    }


def tiny_llava(
    seed: int = 0, image_size: int = 48, patch_size: int = 8, text: dict[str, Any] | None = None
) -> TinyVLM:
    """Tiny LLaVA-1.5 (CLIP vision tower + Llama) with a real ``LlavaProcessor``.

    The token grid is ``image_size / patch_size`` per side (6 x 6 here; 24 x 24 in
    LLaVA-1.5 with 336 px and patch 14).
    """
    import transformers as tf

    config = tf.LlavaConfig(
        vision_config=_clip_config(image_size, patch_size),
        text_config=tf.LlamaConfig(**_text_config(text)),
        image_token_index=LLAVA_IMAGE_ID,
        image_seq_length=(image_size // patch_size) ** 2,
    )
    torch.manual_seed(seed)
    model = tf.LlavaForConditionalGeneration(config).eval()
    image_processor = tf.CLIPImageProcessor(
        size={"shortest_edge": image_size},
        crop_size={"height": image_size, "width": image_size},
    )
    processor = _llava_processor(tf.LlavaProcessor, image_processor, patch_size)
    return TinyVLM("llava", model, processor, sample_image(), LLAVA_PROMPT)


def tiny_llava_next(
    seed: int = 0, tile_size: int = 32, patch_size: int = 8, text: dict[str, Any] | None = None
) -> TinyVLM:
    """Tiny LLaVA-NeXT: 32 px tiles of 4 x 4 tokens, up to 2 x 2 tiles, real processor.

    The sample image (112 x 168) picks 2 x 2 tiles; unpadding to its aspect ratio leaves
    a 6 x 8 high-resolution grid (plus 6 newlines) after the 4 x 4 base grid.
    """
    import transformers as tf

    pinpoints = [[tile_size, 2 * tile_size], [2 * tile_size, tile_size], [2 * tile_size] * 2]
    config = tf.LlavaNextConfig(
        vision_config=_clip_config(tile_size, patch_size),
        text_config=tf.LlamaConfig(**_text_config(text)),
        image_token_index=LLAVA_IMAGE_ID,
        image_grid_pinpoints=pinpoints,
    )
    torch.manual_seed(seed)
    model = tf.LlavaNextForConditionalGeneration(config).eval()
    image_processor = tf.LlavaNextImageProcessor(
        size={"shortest_edge": tile_size},
        crop_size={"height": tile_size, "width": tile_size},
        image_grid_pinpoints=pinpoints,
    )
    processor = _llava_processor(tf.LlavaNextProcessor, image_processor, patch_size)
    return TinyVLM("llava_next", model, processor, sample_image(), LLAVA_PROMPT)


def _llava_processor(processor_class: Any, image_processor: Any, patch_size: int) -> Any:
    """A LLaVA(-NeXT) processor over the tiny tokenizer: CLS token dropped ("default")."""
    return processor_class(
        image_processor=image_processor,
        tokenizer=tiny_tokenizer({LLAVA_IMAGE_TOKEN: LLAVA_IMAGE_ID}),
        patch_size=patch_size,
        vision_feature_select_strategy="default",
        num_additional_image_tokens=1,
    )


def _clip_config(image_size: int, patch_size: int) -> Any:
    import transformers as tf

    return tf.CLIPVisionConfig(
        image_size=image_size,
        patch_size=patch_size,
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
    )
