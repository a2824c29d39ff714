"""The examples in public docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "clusterlens",
    "clusterlens.image",
    "clusterlens.texture.registry",
    "clusterlens.texture.array",
    "clusterlens.texture.clusters",
    "clusterlens.texture.pyramid",
    "clusterlens.allocate.registry",
    "clusterlens.allocate.budgets",
    "clusterlens.models.vlm",
    "clusterlens.models.vlm._mapping",
    "clusterlens.models.vlm.flops",
    "clusterlens.models.vlm.qwen",
    "clusterlens.models.vlm.budgets",
    "clusterlens.evaluate.segmentation",
    "clusterlens.segment.queries",
    "clusterlens.segment.proposers",
    "clusterlens.segment.refine",
    "clusterlens.segment.merge",
    "clusterlens.catalog",
    "clusterlens.catalog.store",
    "clusterlens.catalog.synthetic",
    "clusterlens.models.clip",
    "clusterlens.relevance.query_parse",
    "clusterlens.context",
    "clusterlens.video.frames",
    "clusterlens.video.pyramid",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
