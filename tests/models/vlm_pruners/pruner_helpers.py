"""Tiny random VLMs for the pruner tests (built once per session) and shared helpers."""

from __future__ import annotations

from typing import Any

import pytest

pytest.importorskip("transformers")

from clusterlens.models.vlm import adapter_for  # noqa: E402
from clusterlens.models.vlm.pruners import PruningInputs  # noqa: E402
from clusterlens.models.vlm.tiny import TinyVLM, tiny_vlm  # noqa: E402

_BUNDLES: dict[tuple[str, int], TinyVLM] = {}
QUESTION = "what color is the square ?"


def bundle_of(family: str, layers: int = 2) -> TinyVLM:
    """The tiny model of ``family`` with ``layers`` decoder layers (2 by default)."""
    key = (family, layers)
    if key not in _BUNDLES:
        text = None if layers == 2 else {"num_hidden_layers": layers}
        _BUNDLES[key] = tiny_vlm(family, text=text)
    return _BUNDLES[key]


def inputs_of(family: str, layers: int = 2, question: str = QUESTION) -> PruningInputs:
    """Pruning inputs for the family's sample image and a question."""
    bundle = bundle_of(family, layers)
    adapter = adapter_for(bundle.model)
    prompt = bundle.prompt.replace("what is in the image ?", question)
    batch = bundle.batch(prompt=prompt)
    features = adapter.vision_features(batch)
    return PruningInputs(adapter, batch, features, question, bundle.processor.tokenizer)


def model_logits(inputs: PruningInputs) -> Any:
    """The unpruned model's own forward: the reference for keep-all exactness."""
    import torch

    with torch.inference_mode():
        return inputs.adapter.model(**inputs.batch).logits
