"""Loading from disk only: local folders, the HF cache, tiny models, clear errors."""

from __future__ import annotations

import pytest

from clusterlens.models import ModelNotFoundError, UnknownModelError
from clusterlens.models.vlm import (
    LlavaAdapter,
    QwenVLAdapter,
    adapter_for,
    list_vlm_specs,
    load_vlm,
)
from clusterlens.models.vlm.tiny import sample_image


def test_tiny_names_load_random_models_and_say_so():
    loaded = load_vlm("tiny:qwen2_vl")
    assert loaded.random_weights and isinstance(loaded.adapter, QwenVLAdapter)
    with pytest.raises(UnknownModelError, match="tiny:qwen2_vl"):
        load_vlm("tiny:gpt")


def test_a_saved_model_folder_loads_with_its_processor(tiny, tmp_path):
    bundle = tiny("llava")
    bundle.model.save_pretrained(tmp_path)
    bundle.processor.save_pretrained(tmp_path)
    loaded = load_vlm(str(tmp_path))
    assert isinstance(loaded.adapter, LlavaAdapter) and not loaded.random_weights
    batch = loaded.processor(images=[sample_image()], text=[bundle.prompt], return_tensors="pt")
    assert batch["input_ids"].tolist() == bundle.batch()["input_ids"].tolist()


def test_a_folder_without_config_is_explained(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_vlm(str(tmp_path))


def test_an_uncached_hub_id_says_where_it_looked(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError) as caught:
        load_vlm("Qwen/Qwen2-VL-2B-Instruct")
    message = str(caught.value)
    assert str(tmp_path / "hf" / "hub") in message
    assert "HF_HOME" in message and "local folder" in message


def test_unsupported_families_are_rejected():
    class Other:
        class config:  # noqa: N801 - mimics a model's config attribute
            model_type = "blip"

    with pytest.raises(ValueError, match="no pruning adapter for model type 'blip'"):
        adapter_for(Other())


def test_registry_specs_name_the_tiny_models_and_the_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    (cache / "models--Qwen--Qwen2-VL-2B-Instruct").mkdir(parents=True)
    (cache / "models--openai--clip-vit-base-patch16").mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    specs = list_vlm_specs()
    assert specs[:2] == ["tiny:qwen2_vl", "tiny:qwen2_5_vl"]
    assert "Qwen/Qwen2-VL-2B-Instruct" in specs
    assert "openai/clip-vit-base-patch16" not in specs
