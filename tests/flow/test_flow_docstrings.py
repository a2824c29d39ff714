"""The examples in the flow package's docstrings run and print what they claim."""

from __future__ import annotations

import doctest
import importlib

import pytest

import clusterlens.flow

MODULES = [
    "clusterlens.flow",
    "clusterlens.flow.pairing",
    "clusterlens.flow.sampling",
    "clusterlens.flow.losses",
]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    module = importlib.import_module(name)
    result = doctest.testmod(
        module, optionflags=doctest.ELLIPSIS, extraglobs={"torch": __import__("torch")}
    )
    assert result.failed == 0
    assert result.attempted > 0


def test_public_names_are_exported():
    for name in clusterlens.flow.__all__:
        assert hasattr(clusterlens.flow, name), name
