"""The model registry: names with a source prefix, listing, and clear errors."""

from __future__ import annotations

import pytest

from clusterlens.models import (
    ModelNotFoundError,
    UnknownModelError,
    _registry,
    list_models,
    list_sources,
    load_model,
    register_loader,
)
from clusterlens.models.offline import segmenter as offline_segmenter


@pytest.fixture
def scratch_source():
    """Register a throw-away source and remove it afterwards."""
    register_loader(
        "scratch_test", lambda spec, **kw: ("loaded", spec, kw), list_specs=lambda: ["a", "b"]
    )
    yield "scratch_test"
    _registry._SOURCES.pop("scratch_test", None)


def test_builtin_models_are_listed_with_their_source():
    names = list_models()
    assert "offline:camvid" in names
    assert "sentence:all-MiniLM-L6-v2" in names
    assert names == sorted(names)
    assert list_models("camvid") == ["offline:camvid", "yolo:camvid"]  # the U-Net, the detector
    assert {"offline", "sentence"} <= set(list_sources())


def test_registering_a_source_routes_names_and_keyword_arguments(scratch_source):
    assert load_model("scratch_test:b", device="cpu") == ("loaded", "b", {"device": "cpu"})
    assert {"scratch_test:a", "scratch_test:b"} <= set(list_models())


def test_spec_keeps_everything_after_the_first_colon(scratch_source):
    assert load_model("scratch_test:C:/weights/x.pt")[1] == "C:/weights/x.pt"


def test_duplicate_or_malformed_prefixes_are_rejected(scratch_source):
    with pytest.raises(ValueError, match="already registered"):
        register_loader("scratch_test", lambda spec: None)
    for bad in ("", "Open-Clip", "hf hub"):
        with pytest.raises(ValueError, match="prefix"):
            register_loader(bad, lambda spec: None)


def test_unknown_source_names_the_model_and_the_registered_sources():
    with pytest.raises(UnknownModelError) as info:
        load_model("nope:thing")
    message = str(info.value)
    assert "'nope'" in message and "nope:thing" in message and "offline" in message
    assert isinstance(info.value, ValueError)


def test_name_without_prefix_explains_the_format():
    with pytest.raises(UnknownModelError, match="<source>:<model>"):
        load_model("camvid")


def test_unknown_offline_model_lists_the_bundled_ones():
    with pytest.raises(UnknownModelError, match="offline:camvid"):
        load_model("offline:cityscapes")


def test_missing_checkpoint_path_says_where_it_looked_and_how_to_train(tmp_path):
    missing = tmp_path / "camvid_unet.pt"
    with pytest.raises(ModelNotFoundError) as info:
        load_model(f"offline:{missing}")
    message = str(info.value)
    assert str(missing) in message
    assert "clusterlens.models.offline.train" in message
    assert isinstance(info.value, FileNotFoundError)


def test_missing_bundled_checkpoint_is_an_error_not_random_weights(tmp_path, monkeypatch):
    monkeypatch.setitem(offline_segmenter.BUNDLED, "camvid", tmp_path / "camvid_unet.pt")
    with pytest.raises(ModelNotFoundError, match="offline:camvid") as info:
        load_model("offline:camvid")
    assert str(tmp_path) in str(info.value)


def test_unknown_sentence_model_is_rejected():
    with pytest.raises(UnknownModelError, match="all-MiniLM-L6-v2"):
        load_model("sentence:bert-large")


@pytest.mark.parametrize(
    "name", ["sam:/nowhere/sam_vit_l.pth", "sam2:/nowhere/sam2.1_hiera_tiny.pt"]
)
def test_sam_checkpoints_load_through_the_registry_with_a_clear_error(name):
    from clusterlens.models import load_model

    with pytest.raises(FileNotFoundError, match="checkpoint not found at /nowhere"):
        load_model(name)
