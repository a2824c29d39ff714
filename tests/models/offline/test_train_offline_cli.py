"""The train-offline command wraps the training recipe."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from clusterlens.cli.train import register


def _app() -> typer.Typer:
    app = typer.Typer()
    register(app)

    @app.command("noop")
    def noop() -> None:  # a second command keeps Typer in multi-command mode
        """Nothing."""

    return app


def test_command_is_registered_with_its_options():
    result = CliRunner().invoke(_app(), ["train-offline", "--help"])
    assert result.exit_code == 0
    for option in ("--out", "--data", "--seed", "--epochs", "--json"):
        assert option in result.output


def test_missing_data_is_a_one_line_error(tmp_path):
    result = CliRunner().invoke(
        _app(), ["train-offline", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)]
    )
    assert result.exit_code == 2
    assert "camvid" in result.output.lower()
