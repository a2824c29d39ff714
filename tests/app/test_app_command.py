"""``clusterlens app``: starts, prints its URL, serves the page on localhost."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request

import pytest
from typer.testing import CliRunner

from clusterlens.cli.main import app

pytest.importorskip("gradio", reason="the app extra is not installed")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_help_names_the_options():
    result = CliRunner().invoke(app, ["app", "--help"])
    assert result.exit_code == 0
    for option in ("--host", "--port", "--images", "--catalog"):
        assert option in result.output


def test_missing_images_folder_is_an_error(tmp_path):
    result = CliRunner().invoke(app, ["app", "--images", str(tmp_path / "nowhere")])
    assert result.exit_code == 2 and "not a folder" in result.output


@pytest.mark.slow  # starts a server in a child process (a few seconds)
def test_command_prints_its_url_and_serves_the_page():
    port = free_port()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    launcher = "from clusterlens.cli.main import main; main()"
    command = [sys.executable, "-c", launcher, "app", "--port", str(port)]
    child = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True
    )
    try:
        lines = []
        for line in child.stdout:  # the server blocks after printing its URL
            lines.append(line)
            if "clusterlens app: http" in line:
                break
        url = f"http://127.0.0.1:{port}/"
        assert f"clusterlens app: {url}" in "".join(lines)
        with urllib.request.urlopen(url, timeout=30) as response:
            assert "clusterlens microscope" in response.read().decode()
    finally:
        child.terminate()
        child.wait(timeout=30)


def test_a_missing_catalog_is_a_message_in_its_tab(tmp_path):
    from clusterlens.app.ui import build_app

    app = build_app(catalog=tmp_path / "missing.db")  # the app still builds
    messages = [
        block.value
        for block in app.blocks.values()
        if getattr(block, "elem_id", None) == "catalog-message"
    ]
    assert len(messages) == 1 and "cannot open the catalog" in messages[0]
    assert "missing.db" in messages[0]
