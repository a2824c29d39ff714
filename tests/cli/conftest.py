"""Fixtures shared by the command tests of tests/cli."""

from __future__ import annotations

import pytest
import typer

from clusterlens.cli.catalog import register


@pytest.fixture
def catalog_cli() -> typer.Typer:
    """A root Typer app with the ``catalog`` command group registered, as
    ``clusterlens`` has it (including ``catalog issues`` and ``catalog select``)."""
    local = typer.Typer()
    register(local)

    @local.callback()
    def _root() -> None:
        """Local root so 'catalog' stays a sub-command."""

    return local
