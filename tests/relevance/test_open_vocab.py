"""Open-vocabulary coupling: dense CLIP (tiny random configs) as a select model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from clusterlens.models import ModelNotFoundError
from clusterlens.pipeline import select_patches
from clusterlens.relevance.open_vocab import (
    NEGATIVE_PROMPTS,
    OpenVocabRelevance,
    object_phrase,
    relevance_model,
)

pytestmark = pytest.mark.slow  # imports open_clip / transformers


def image(seed: int = 0, shape=(48, 64)) -> np.ndarray:
    return np.random.default_rng(seed).random((*shape, 3)).astype(np.float32)


@pytest.fixture(scope="module")
def tiny_open_clip():
    pytest.importorskip("open_clip")
    return relevance_model("open_clip:tiny")


def test_object_phrases_drop_filler_only():
    assert object_phrase("  A photo of the Parked   cars. ") == "parked cars"
    assert object_phrase("text on the sign") == "text on the sign"
    assert object_phrase("image of a dog?") == "dog"


def test_the_object_phrase_is_the_class(tiny_open_clip):
    match = tiny_open_clip.match_query("a photo of parked cars")
    assert match.matched and match.classes == ("parked cars",)
    assert match.best == ("parked cars", 1.0)
    with pytest.raises(ValueError, match="no object"):
        tiny_open_clip.match_query("a photo of ")
    with pytest.raises(ValueError, match="non-empty"):
        tiny_open_clip.match_query("  ")


@pytest.mark.parametrize("name", ["open_clip:tiny", "hf:tiny-clip", "hf:tiny-siglip"])
def test_relevance_is_the_dense_predictors_probability_against_the_negatives(name):
    pytest.importorskip("open_clip" if name.startswith("open_clip") else "transformers")
    from clusterlens.segment.dense import load_dense_predictor

    model = relevance_model(name)
    rgb = image(1, (50, 70))
    relevance = model.relevance(rgb, ["car"])
    assert relevance.shape == (50, 70) and relevance.dtype == np.float32
    assert relevance.min() >= 0 and relevance.max() <= 1
    # the segment predictor on the same model, asked for the query and the negatives
    reference = load_dense_predictor(name).predict(rgb, ["car", *NEGATIVE_PROMPTS])
    np.testing.assert_allclose(relevance, reference.probabilities[0], atol=1e-5)
    # two phrases: their union is the mass both win from the negatives
    both = model.relevance(rgb, ["car", "tree"])
    reference = load_dense_predictor(name).predict(rgb, ["car", "tree", *NEGATIVE_PROMPTS])
    np.testing.assert_allclose(both, reference.probabilities[:2].sum(0), atol=1e-5)
    assert (both >= relevance - 1e-6).all()


def test_a_second_query_on_the_same_image_reuses_the_image_tower(tiny_open_clip):
    rgb = image(2)
    tiny_open_clip.relevance(rgb, ["car"])
    windows = tiny_open_clip._image[1]
    tiny_open_clip.relevance(rgb, ["dog"])
    assert tiny_open_clip._image[1] is windows
    tiny_open_clip.relevance(rgb.copy(), ["dog"])  # other pixels: computed again
    assert tiny_open_clip._image is None or tiny_open_clip._image[1] is not windows


def test_negative_prompts_are_checked(tiny_open_clip):
    with pytest.raises(ValueError, match="negative prompts"):
        tiny_open_clip.relevance(image(), ["background"])
    with pytest.raises(ValueError, match="non-empty prompts"):
        OpenVocabRelevance(tiny_open_clip.dense, negatives=())


def test_models_that_cannot_couple_are_refused_by_name():
    pytest.importorskip("transformers")
    with pytest.raises(ValueError, match="hf:tiny-dinov2 has no text tower"):
        relevance_model("hf:tiny-dinov2")
    with pytest.raises(ValueError, match="cannot couple a query to pixels; accepted"):
        relevance_model("yolo:yolov8n-seg.yaml")


def test_a_missing_checkpoint_says_where_it_looked(tmp_path):
    pytest.importorskip("open_clip")
    missing = tmp_path / "weights.bin"
    with pytest.raises(ModelNotFoundError, match="weights.bin"):
        select_patches(image(), "a car", "topk", 4, model=f"open_clip:ViT-B-16/{missing}")
    with pytest.raises(ModelNotFoundError, match="neither a model folder"):
        select_patches(image(), "a car", "topk", 4, model=f"hf:{tmp_path / 'clip'}")


@pytest.mark.parametrize("strategy", ["topk", "lazy-cascade", "cluster-cascade"])
def test_select_with_a_clip_model_couples_the_query(strategy, tiny_open_clip):
    rgb = image(3)
    result = select_patches(rgb, "a car", strategy, 8, model=tiny_open_clip, grid=8)
    meta = result.allocation.meta
    assert meta["model"] == "open_clip:tiny"
    assert meta["query_match"]["classes"] == ["car"]
    assert len(result.allocation) == 8
    coupling = result.ways[2]
    np.testing.assert_allclose(coupling, tiny_open_clip.relevance(rgb, ["car"]), atol=1e-6)
    if strategy == "topk":  # the kept cells are the best by the balanced score
        cells = result.allocation.grid.cell_means(result.relevance)[0]
        kept = cells[result.allocation.rows, result.allocation.cols]
        assert kept.min() >= np.sort(cells.ravel())[-8] - 1e-6
    if strategy == "lazy-cascade":
        assert any("cannot evaluate lazily" in note for note in result.notes)


def test_select_command_with_a_tiny_clip_writes_json(tmp_path):
    pytest.importorskip("open_clip")
    from clusterlens.cli.main import app

    path = tmp_path / "street.png"
    # an image and phrases no other test uses: the model (kept by the registry for the
    # whole run) caches text embeddings and its last image, and an earlier test's
    # cache would shift which call pays for which tower
    Image.fromarray((image(4041) * 255).astype(np.uint8)).save(path)
    queries = ["-q", "a parked lorry", "-q", "a tall hedge"]
    arguments = ["select", str(path), *queries, "-s", "topk", "-b", "6"]
    done = CliRunner().invoke(
        app, [*arguments, "--model", "open_clip:tiny", "--out", str(tmp_path)]
    )
    assert done.exit_code == 0, done.output
    first, second = (json.loads((tmp_path / f"street_topk_q{i}.json").read_text()) for i in (1, 2))
    assert first["meta"]["model"] == "open_clip:tiny"
    assert first["meta"]["query_match"]["classes"] == ["parked lorry"]
    assert len(first["patches"]) == 6
    # the image tower ran for the first query only: the second pays the text tower
    assert second["accounting"]["encoder_gflops"] < first["accounting"]["encoder_gflops"]


def test_ask_accepts_a_clip_relevance_model(monkeypatch):
    pytest.importorskip("open_clip")
    pytest.importorskip("transformers")
    import clusterlens.pipeline as pipeline
    from clusterlens.ask import answer_question
    from clusterlens.models.vlm.tiny import sample_image

    seen = []
    select = pipeline.select_patches

    def spy(*args, **kwargs):  # keep the selection ask made, to check what it used
        seen.append(select(*args, **kwargs))
        return seen[-1]

    monkeypatch.setattr(pipeline, "select_patches", spy)
    result = answer_question(
        sample_image(224, 336),
        "the red square on the left",
        "tiny:qwen2_vl",
        "topk",
        20,
        max_new_tokens=2,
        relevance_model="open_clip:tiny",
    )
    assert result.image_tokens_kept == 20
    meta = seen[0].allocation.meta
    assert meta["model"] == "open_clip:tiny" and meta["query_match"]["classes"] == ["red square"]
    assert meta["query_parse"]["regions"] == ["left"]
    assert (seen[0].allocation.cols < 6).all()  # 12 token columns: the left half only


def test_when_the_negatives_win_everywhere_select_says_nothing_matches():
    import torch

    class NegativesWin:
        """A dense CLIP stand-in whose cosines favour the negative prompts by 0.1."""

        name = "stub:clip"
        logit_scale = 40.0

        def image_windows(self, rgb):
            return rgb.shape[:2]

        def probabilities(self, size, names):
            cosine = torch.full((len(names), *size), 0.2)
            cosine[1:] += 0.1  # names[0] is the query's phrase, the rest are negatives
            return torch.softmax(self.logit_scale * cosine, dim=0)

    model = OpenVocabRelevance(NegativesWin())
    relevance = model.relevance(image(), ["a unicorn"])
    assert relevance.max() < 0.1  # e^-4 / (e^-4 + 4): about 0.0046
    result = select_patches(image(), "a unicorn", "topk", 4, model=model)
    assert any("nothing in the image matches unicorn" in note for note in result.notes)
