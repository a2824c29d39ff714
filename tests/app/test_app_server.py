"""The app served for real on localhost, called through gradio_client."""

from __future__ import annotations

import socket

import numpy as np
import pytest
from PIL import Image

gradio = pytest.importorskip("gradio", reason="the app extra is not installed")
from gradio_client import Client, handle_file  # noqa: E402

from clusterlens.app.session import UPLOAD_CHOICE, ImageSources  # noqa: E402
from clusterlens.app.ui import build_app  # noqa: E402


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(street_file):
    """The app on a free localhost port, with the test image's folder as --images."""
    app = build_app(ImageSources.scan(street_file.parent))
    app.queue()
    app.launch(
        server_name="127.0.0.1",
        server_port=free_port(),
        prevent_thread_lock=True,
        share=False,
        quiet=True,
    )
    try:
        yield app
    finally:
        app.close()


@pytest.mark.slow  # starts a server (a few seconds)
def test_allocation_endpoint_over_http(served, street_file):
    client = Client(served.local_url, verbose=False, download_files=True)
    overlay_a, heat_a, overlay_b, heat_b, views, table, match, message = client.predict(
        UPLOAD_CHOICE,
        handle_file(str(street_file)),
        "the top-left corner",  # a region alone: no model is loaded
        "topk",
        8,
        "uniform",
        4,
        8,
        "fixed",
        api_name="/allocate",
    )
    assert message == ""
    pictures = [np.asarray(Image.open(path)) for path in (overlay_a, heat_a, overlay_b, heat_b)]
    assert all(picture.shape[:2] == (96, 128) for picture in pictures)
    rows = {row[0]: row[1:] for row in table["data"]}
    assert rows["patches_kept"] == ["8", "4"]
    assert [view["caption"].split()[0] for view in views] == [
        "information",
        "salience",
        "coupling",
    ]
    assert match["query_parse"]["regions"] == ["top-left"]
    # a second call from the same client reuses its session's decoded image
    *_, table, _, _ = client.predict(
        UPLOAD_CHOICE,
        handle_file(str(street_file)),
        "the top-left corner",
        "topk",
        16,
        "uniform",
        4,
        8,
        "fixed",
        api_name="/allocate",
    )
    rows = {row[0]: row[1:] for row in table["data"]}
    assert rows["patches_kept"][0] == "16"
    assert "decoded image" in rows["cached"][0]


@pytest.mark.slow
def test_bad_upload_and_regions_over_http(served, street_file, broken_file):
    client = Client(served.local_url, verbose=False)
    *pictures, message = client.predict(
        UPLOAD_CHOICE,
        handle_file(str(broken_file)),
        "the sky",
        "topk",
        8,
        "topk",
        8,
        8,
        "fixed",
        api_name="/allocate",
    )
    assert message.startswith("⚠️") and "broken.png" in message
    picture, note = client.predict(
        "street.png", None, "slic", 8, api_name="/regions"
    )  # a file listed under --images, chosen by name
    assert np.asarray(Image.open(picture)).shape[:2] == (96, 128)
    assert "regions (slic)" in note


@pytest.mark.slow
def test_two_clients_have_their_own_sessions(served, street_file):
    """Each client is a session: the second one decodes the image itself."""

    def cached(client: Client) -> str:
        *_, table, _, _ = client.predict(
            UPLOAD_CHOICE,
            handle_file(str(street_file)),
            "the top-left corner",
            "topk",
            8,
            "uniform",
            4,
            8,
            "fixed",
            api_name="/allocate",
        )
        return {row[0]: row[1:] for row in table["data"]}["cached"][0]

    first = Client(served.local_url, verbose=False, download_files=False)
    second = Client(served.local_url, verbose=False, download_files=False)
    assert "decoded image" not in cached(first)
    assert "decoded image" in cached(first)  # the same session, the same image
    assert "decoded image" not in cached(second)  # another session: its own context
