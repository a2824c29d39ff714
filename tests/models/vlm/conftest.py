"""Tiny random VLMs (real architectures and processors), built once per session."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

pytest.importorskip("transformers")

from clusterlens.models.vlm import PruningAdapter, adapter_for  # noqa: E402
from clusterlens.models.vlm.tiny import TINY_FAMILIES, TinyVLM, tiny_vlm  # noqa: E402

_BUNDLES: dict[str, TinyVLM] = {}


def bundle_of(family: str) -> TinyVLM:
    if family not in _BUNDLES:
        _BUNDLES[family] = tiny_vlm(family)
    return _BUNDLES[family]


@pytest.fixture(scope="session")
def tiny() -> Callable[[str], TinyVLM]:
    """Tiny bundle of a family, built once per session."""
    return bundle_of


@pytest.fixture(params=TINY_FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def bundle(family: str) -> TinyVLM:
    return bundle_of(family)


@pytest.fixture
def adapter(bundle: TinyVLM) -> PruningAdapter:
    return adapter_for(bundle.model)


@pytest.fixture
def batch(bundle: TinyVLM) -> Any:
    return bundle.batch()
