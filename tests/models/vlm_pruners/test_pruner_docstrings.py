"""The examples in the pruners' docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "clusterlens.models.vlm.pruners",
    "clusterlens.models.vlm.pruners.fastv",
    "clusterlens.models.vlm.pruners.visionzip",
    "clusterlens.models.vlm.pruners.divprune",
    "clusterlens.models.vlm.pruners.cdpruner",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
    assert result.attempted > 0
