"""offline:camvid — the bundled segmenter: shapes, inputs, determinism, relevance, accuracy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from clusterlens.evaluate.camvid import IGNORE_INDEX, list_pairs, load_pair
from clusterlens.evaluate.segmentation import MeanIoU
from clusterlens.models import CamVidSegmenter, load_model
from clusterlens.models.offline.segmenter import BUNDLED

CAR = 8
ROAD = 3


@pytest.fixture(scope="module")
def segmenter() -> CamVidSegmenter:
    return load_model("offline:camvid")


@pytest.fixture(scope="module")
def street() -> np.ndarray:
    """A synthetic 'street': blue top, grey bottom, so tests run without data."""
    image = np.zeros((90, 120, 3), np.float32)
    image[:40] = (0.55, 0.7, 0.95)
    image[40:] = (0.4, 0.4, 0.42)
    return image


def test_bundled_checkpoint_is_small_and_described(segmenter):
    assert BUNDLED["camvid"].stat().st_size <= 5 * 1024 * 1024
    assert segmenter.num_classes == 11
    assert segmenter.class_names[CAR] == "Car"
    assert sum(p.numel() for p in segmenter.network.parameters()) < 2.5e6


@pytest.mark.parametrize("size", [(360, 480), (90, 120), (1, 1), (33, 257), (720, 540)])
def test_probabilities_have_input_resolution_and_sum_to_one(segmenter, size):
    image = np.random.default_rng(0).random((*size, 3), dtype=np.float32)
    probabilities = segmenter.predict_proba(image)
    assert probabilities.shape == (11, *size)
    assert probabilities.dtype == np.float32
    assert probabilities.min() >= 0.0 and probabilities.max() <= 1.0
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)


def test_prediction_is_deterministic(segmenter, street):
    first = segmenter.predict_proba(street)
    assert np.array_equal(first, segmenter.predict_proba(street))
    assert np.array_equal(segmenter.predict(street), first.argmax(axis=0))


def test_every_image_form_gives_the_same_answer(segmenter, street, tmp_path):
    as_uint8 = np.round(street * 255).astype(np.uint8)
    path = tmp_path / "street.png"
    Image.fromarray(as_uint8).save(path)
    reference = segmenter.predict_proba(as_uint8)
    for other in (path, str(path), Image.open(path), torch.from_numpy(as_uint8).permute(2, 0, 1)):
        np.testing.assert_allclose(segmenter.predict_proba(other), reference, atol=1e-6)
    assert segmenter.predict_proba(as_uint8[..., 0]).shape == (11, 90, 120)  # grayscale


def test_bad_image_input_is_a_clear_error(segmenter):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        segmenter.predict_proba(np.full((4, 4, 3), 2.0, np.float32))
    with pytest.raises(TypeError, match="accepted"):
        segmenter.predict_proba([1, 2, 3])


def test_relevance_for_class_names_sums_their_probabilities(segmenter, street):
    probabilities = segmenter.predict_proba(street)
    relevance = segmenter.relevance(street, ["Car", "Road"])
    assert relevance.shape == (90, 120)
    np.testing.assert_allclose(relevance, probabilities[CAR] + probabilities[ROAD], atol=1e-6)


@pytest.mark.slow
def test_relevance_for_text_uses_the_matched_class(segmenter, street):
    np.testing.assert_allclose(
        segmenter.relevance(street, "parked automobiles"),
        segmenter.predict_proba(street)[CAR],
        atol=1e-6,
    )


@pytest.mark.slow
def test_query_naming_no_class_is_refused_with_the_scores(segmenter, street):
    assert not segmenter.match_query("a photo of a giraffe").matched
    with pytest.raises(ValueError, match="names none of") as info:
        segmenter.relevance(street, "quantum chromodynamics")
    assert "threshold" in str(info.value) and "Pedestrian" in str(info.value)


def test_unknown_class_name_is_refused(segmenter, street):
    with pytest.raises(ValueError, match="Giraffe"):
        segmenter.relevance(street, ["Car", "Giraffe"])


@pytest.fixture(scope="module")
def val_samples(shared_data):
    pairs = list_pairs("val", shared_data)
    return [load_pair(*pairs[index]) for index in (0, 33, 66, 100)]


@pytest.mark.slow
def test_accuracy_on_val_images_is_far_above_chance(segmenter, val_samples):
    metric = MeanIoU(11, ignore_index=IGNORE_INDEX)
    for image, label in val_samples:
        metric.update(segmenter.predict(image), label)
    scores = metric.compute()
    # A random or untrained model scores about 1/11 pixel accuracy and < 10% mIoU.
    assert scores.pixel_accuracy >= 0.80
    assert scores.miou >= 0.45
    assert scores.iou[ROAD] >= 0.85


@pytest.mark.slow
def test_relevance_of_road_is_high_on_road_and_low_elsewhere(segmenter, val_samples):
    image, label = val_samples[0]
    relevance = segmenter.relevance(image, "the road")
    assert relevance[label == ROAD].mean() >= 0.8
    assert relevance[(label != ROAD) & (label != IGNORE_INDEX)].mean() <= 0.15
