"""The app served for real on localhost, called through gradio_client."""

from __future__ import annotations

import html
import socket
import urllib.error
import urllib.request

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


def table_rows(table: str) -> dict[str, list[str]]:
    """The accounting table (HTML, as the page shows it) as {row name: [A, B]}."""
    import re

    rows = re.findall(r"<tr>(.*?)</tr>", table)[1:]  # the first row is the header
    cells = [[html.unescape(c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]
    return {row[0]: row[1:] for row in cells}


def allocate(client, upload, query, strategy_a, budget_a, strategy_b, budget_b, grid, balancer,
             model="offline:camvid", tokens=0, gaze=""):  # fmt: skip
    """The /allocate endpoint: inputs in the page's order; its 10 outputs."""
    return client.predict(
        UPLOAD_CHOICE, upload, query, grid, balancer, model, tokens, gaze,
        strategy_a, budget_a, strategy_b, budget_b, api_name="/allocate",
    )  # fmt: skip


@pytest.fixture
def served(street_file, tiny_catalog):
    """The app on a free localhost port, with the test image's folder as --images."""
    app = build_app(ImageSources.scan(street_file.parent), tiny_catalog)
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
    outputs = allocate(
        client, handle_file(str(street_file)), "the top-left corner",  # no model is loaded
        "topk", 8, "uniform", 4, 8, "fixed",
    )  # fmt: skip
    overlay_a, tokens_a, heat_a, overlay_b, tokens_b, heat_b, views, table, match, message = outputs
    assert message == ""
    pictures = [np.asarray(Image.open(path)) for path in (overlay_a, heat_a, overlay_b, heat_b)]
    assert all(picture.shape[:2] == (96, 128) for picture in pictures)
    assert np.asarray(Image.open(tokens_a)).shape[1] == 640  # the token-budget map's width
    rows = table_rows(table)
    assert rows["patches_kept"] == ["8", "4"]
    assert [view["caption"].split()[0] for view in views] == [
        "information",
        "salience",
        "coupling",
    ]
    assert match["query_parse"]["regions"] == ["top-left"]
    # a second call from the same client reuses its session's decoded image
    *_, table, _, _ = allocate(
        client, handle_file(str(street_file)), "the top-left corner", "topk", 16, "uniform", 4,
        8, "fixed",
    )  # fmt: skip
    rows = table_rows(table)
    assert rows["patches_kept"][0] == "16"
    assert "decoded image" in rows["cached"][0]
    # one side alone after a strategy change: its overlay and token map, the table
    overlay, token_picture, table, message = client.predict(
        UPLOAD_CHOICE, handle_file(str(street_file)), "the top-left corner", 8, "fixed",
        "offline:camvid", 0, "", "topk", 12, api_name="/rerender_b",
    )  # fmt: skip
    rows = table_rows(table)
    assert message == "" and rows["patches_kept"] == ["16", "12"]


@pytest.mark.slow
def test_bad_upload_and_regions_over_http(served, street_file, broken_file):
    client = Client(served.local_url, verbose=False)
    *pictures, message = allocate(
        client, handle_file(str(broken_file)), "the sky", "topk", 8, "topk", 8, 8, "fixed"
    )
    assert message.startswith("⚠️") and "broken.png" in message
    picture, metrics, note = client.predict(
        "street.png", None, "slic", 8, 0, 0, None, api_name="/regions"
    )  # a file listed under --images, chosen by name
    assert np.asarray(Image.open(picture)).shape[:2] == (96, 128)
    assert "regions (slic)" in note


@pytest.mark.slow
def test_two_clients_have_their_own_sessions(served, street_file):
    """Each client is a session: the second one decodes the image itself."""

    def cached(client: Client) -> str:
        *_, table, _, _ = allocate(
            client, handle_file(str(street_file)), "the top-left corner", "topk", 8, "uniform",
            4, 8, "fixed",
        )  # fmt: skip
        return table_rows(table)["cached"][0]

    first = Client(served.local_url, verbose=False, download_files=False)
    second = Client(served.local_url, verbose=False, download_files=False)
    assert "decoded image" not in cached(first)
    assert "decoded image" in cached(first)  # the same session, the same image
    assert "decoded image" not in cached(second)  # another session: its own context


@pytest.mark.slow
def test_catalog_files_are_not_served_by_path(served, tiny_catalog, street_file):
    """Gradio's file route serves its own cache only: neither the catalog's images nor
    the database nor any other file can be fetched by naming its path."""
    recorded = next((tiny_catalog.parent / "shapes" / "images").glob("*.png"))
    for path in (recorded, tiny_catalog, street_file):
        for route in ("gradio_api/file=", "file="):
            url = f"{served.local_url}{route}{path}"
            with pytest.raises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(url, timeout=30)
            assert refused.value.code in (403, 404)
