"""The Gradio page: components wired to :mod:`clusterlens.app.handlers`.

Offline by construction: analytics off (the environment variable is set before Gradio
is imported, and ``analytics_enabled=False`` on the Blocks), no share links, bound to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it

from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from clusterlens.allocate import list_strategies  # noqa: E402
from clusterlens.app.handlers import (  # noqa: E402
    ACCOUNTING_HEADERS,
    Settings,
    run_allocation,
    run_regions,
)
from clusterlens.app.session import SAMPLE_CHOICE, UPLOAD_CHOICE, ImageSources  # noqa: E402

BALANCERS = ("adaptive", "fixed")
#: Pictures travel as JPEG: Gradio's PNG encoder took 480 ms for a 1024^2 picture here
#: (four per allocation: 1.9 s), JPEG 6 ms, and a screen shows no difference.
PICTURE_FORMAT = "jpeg"
#: Region backends that run without a checkpoint (SAM and SAM2 need one).
REGION_METHODS = ("fast", "slic", "felzenszwalb")
DEFAULT_QUERY = "the sky"


def build_app(sources: ImageSources | None = None) -> gr.Blocks:
    """The app's Blocks; ``sources`` lists the files under ``--images`` (none by default)."""
    sources = sources or ImageSources()
    with gr.Blocks(title="clusterlens microscope", analytics_enabled=False) as app:
        session = gr.State(None)  # one AppSession per browser session, made on first use
        gr.Markdown("# clusterlens microscope")
        with gr.Row():
            source = gr.Dropdown(
                sources.choices, value=SAMPLE_CHOICE, label="image", elem_id="image-source"
            )
            upload = gr.File(label="upload", file_types=["image"], type="filepath")
        # an upload is what the user wants to look at next: select it in the picker
        upload.upload(lambda: UPLOAD_CHOICE, None, source, api_name=False)
        with gr.Tab("Allocation"):
            _allocation_tab(session, source, upload, sources)
        with gr.Tab("Regions"):
            _regions_tab(session, source, upload, sources)
    return app


def _allocation_tab(
    session: gr.State, source: gr.Dropdown, upload: gr.File, sources: ImageSources
) -> None:
    strategies = list_strategies()
    with gr.Row():
        query = gr.Textbox(DEFAULT_QUERY, label="query", elem_id="query")
        grid = gr.Slider(4, 64, value=32, step=1, label="grid (cells per side)")
        balancer = gr.Dropdown(list(BALANCERS), value="adaptive", label="balancer")
    with gr.Row():
        strategy_a = gr.Dropdown(strategies, value="cluster-cascade", label="strategy A")
        budget_a = gr.Slider(0, 1024, value=144, step=1, label="budget A (patches)")
        strategy_b = gr.Dropdown(strategies, value="topk", label="strategy B")
        budget_b = gr.Slider(0, 1024, value=64, step=1, label="budget B (patches)")
    run = gr.Button("Allocate", variant="primary", elem_id="allocate")
    message = gr.Markdown(elem_id="allocation-message")
    with gr.Row():
        overlay_a = gr.Image(label="kept patches A", elem_id="overlay-a", format=PICTURE_FORMAT)
        overlay_b = gr.Image(label="kept patches B", elem_id="overlay-b", format=PICTURE_FORMAT)
    with gr.Row():
        heat_a = gr.Image(label="balanced relevance A", format=PICTURE_FORMAT)
        heat_b = gr.Image(label="balanced relevance B", format=PICTURE_FORMAT)
    views = gr.Gallery(
        label="what relevance A is made of: each way of knowing, and the clusters",
        columns=4,
        height="auto",
        format=PICTURE_FORMAT,
        elem_id="views-a",
    )
    accounting = gr.Dataframe(headers=ACCOUNTING_HEADERS, label="accounting", wrap=True)
    match = gr.JSON(label="query: parse, match, notes (A)")

    def allocate(state, src, file, text, strat_a, bud_a, strat_b, bud_b, cells, bal) -> Any:
        first = Settings(text or "", strat_a, int(bud_a), int(cells), bal)
        second = Settings(text or "", strat_b, int(bud_b), int(cells), bal)
        state, a, b, rows, note = run_allocation(state, src, file, first, second, sources)
        if note.startswith("⚠️"):
            gr.Warning(note)
        pictures = [side and side[key] for side in (a, b) for key in ("overlay", "heat")]
        return state, *pictures, a and a["views"], rows, a and a["match"], note

    inputs = [session, source, upload, query, strategy_a, budget_a, strategy_b, budget_b]
    outputs = [session, overlay_a, heat_a, overlay_b, heat_b, views, accounting, match, message]
    run.click(allocate, [*inputs, grid, balancer], outputs, api_name="allocate")
    query.submit(allocate, [*inputs, grid, balancer], outputs, api_name=False)


def _regions_tab(
    session: gr.State, source: gr.Dropdown, upload: gr.File, sources: ImageSources
) -> None:
    with gr.Row():
        method = gr.Dropdown(list(REGION_METHODS), value="fast", label="method")
        segments = gr.Slider(8, 1000, value=100, step=1, label="segments")
    run = gr.Button("Cluster", variant="primary", elem_id="cluster")
    message = gr.Markdown(elem_id="regions-message")
    overlay = gr.Image(label="region boundaries", elem_id="regions-overlay", format=PICTURE_FORMAT)

    def regions(state, src, file, name, count) -> Any:
        state, picture, note = run_regions(state, src, file, name, int(count), sources)
        if note.startswith("⚠️"):
            gr.Warning(note)
        return state, picture, note

    run.click(
        regions,
        [session, source, upload, method, segments],
        [session, overlay, message],
        api_name="regions",
    )


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    images: str | None = None,
    block: bool = True,
) -> gr.Blocks:
    """Start the app on ``host:port`` and print its URL (never a share link)."""
    app = build_app(ImageSources.scan(images))
    app.queue()  # one worker per event: a slow model pass does not stall other sessions
    app.launch(
        server_name=host,
        server_port=port,
        share=False,
        inbrowser=False,
        prevent_thread_lock=True,  # returns, so the URL can be printed; then block below
        show_error=True,
        quiet=True,
    )
    print(f"clusterlens app: http://{host}:{app.server_port}/", flush=True)
    if block:
        app.block_thread()
    return app
