"""A synthetic street-like scene and a dense predictor that knows it (fast tests)."""

from __future__ import annotations

import numpy as np
import pytest

from clusterlens.segment.dense import DenseOutput, validate_class_names


def scene_image() -> np.ndarray:
    """Sky (top), road (bottom), a small red car on the road."""
    image = np.zeros((48, 64, 3), np.float32)
    image[:20] = (0.5, 0.7, 1.0)
    image[20:] = (0.3, 0.3, 0.3)
    image[30:38, 20:32] = (0.9, 0.1, 0.1)
    return image


def scene_truth() -> np.ndarray:
    truth = np.ones((48, 64), np.int64)  # road
    truth[:20] = 0  # sky
    truth[30:38, 20:32] = 2  # car
    return truth


class SceneDense:
    """Probabilities from the truth, blurred, so boundaries are soft like a real model's."""

    name = "scene"

    def predict(self, image, class_names) -> DenseOutput:
        from scipy import ndimage

        names = validate_class_names(class_names)
        one_hot = np.eye(3, dtype=np.float32)[scene_truth()].transpose(2, 0, 1)
        blurred = np.stack([ndimage.uniform_filter(plane, 5) for plane in one_hot]) + 0.05
        probabilities = blurred / blurred.sum(axis=0, keepdims=True)
        return DenseOutput(
            probabilities.astype(np.float32), probabilities.astype(np.float32), names
        )


@pytest.fixture
def image() -> np.ndarray:
    return scene_image()


@pytest.fixture
def truth() -> np.ndarray:
    return scene_truth()


@pytest.fixture
def dense() -> SceneDense:
    return SceneDense()
