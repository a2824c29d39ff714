"""The Gradio page: components wired to :mod:`clusterlens.app.handlers`.

Offline by construction: analytics off (the environment variable is set before Gradio
is imported, and ``analytics_enabled=False`` on the Blocks), no share links, bound to
127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio reads it

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from clusterlens.allocate import list_strategies  # noqa: E402
from clusterlens.app.catalog import (  # noqa: E402
    DISTANCE_KEYS,
    SORT_KEYS,
    CatalogView,
    cluster_grid,
    cluster_overview,
    image_detail,
    open_catalog,
    sorted_grid,
)
from clusterlens.app.catalog_problems import (  # noqa: E402
    DEFAULT_TOP,
    MAX_TOP,
    SECTIONS,
    problem_detail,
    problem_grid,
)
from clusterlens.app.handlers import (  # noqa: E402
    ACCOUNTING_HEADERS,
    MODELS,
    USER_ERRORS,
    Settings,
    click_gaze,
    rerender_side,
    run_allocation,
    table_html,
)
from clusterlens.app.regions import run_regions  # noqa: E402
from clusterlens.app.segmentation import (  # noqa: E402
    DEFAULT_CLASSES,
    PROPOSERS,
    SEGMENT_MODELS,
    SegmentSettings,
    run_segmentation,
)
from clusterlens.app.session import SAMPLE_CHOICE, UPLOAD_CHOICE, ImageSources  # noqa: E402
from clusterlens.catalog.near_duplicates import SIGNALS as DUPLICATE_SIGNALS  # noqa: E402

BALANCERS = ("adaptive", "fixed")
#: Pictures travel as JPEG: Gradio's PNG encoder took 480 ms for a 1024^2 picture here
#: (four per allocation: 1.9 s), JPEG 6 ms, and a screen shows no difference.
PICTURE_FORMAT = "jpeg"
#: Pictures the page shows: JPEG, no download/share buttons (nothing to send anywhere).
PICTURE = {"format": PICTURE_FORMAT, "interactive": False}
THUMBS = {"format": PICTURE_FORMAT, "interactive": False, "allow_preview": False}
#: Region backends that run without a checkpoint (SAM and SAM2 need one).
REGION_METHODS = ("fast", "slic", "felzenszwalb")
DEFAULT_QUERY = "the sky"
#: Re-renders (a budget, strategy, token budget or gaze change) skip Gradio's queue: a
#: plain request took about 60 ms less per re-render in Chromium at 1024^2 than the
#: queue's round trip (benchmarks/app.py); "always_last" drops the moves a slow
#: re-render has overtaken, and no spinner flickers over the pictures. A session's
#: handlers hold its lock, so a queued full run and a re-render never interleave.
QUICK = {"trigger_mode": "always_last", "show_progress": "hidden", "queue": False}


def build_app(sources: ImageSources | None = None, catalog: str | Path | None = None) -> gr.Blocks:
    """The app's Blocks; ``sources`` lists the files under ``--images`` (none by default),
    ``catalog`` is the catalog file the catalog tab browses (read-only). A catalog that
    cannot be opened is a message in that tab: the rest of the app still works."""
    sources = sources or ImageSources()
    view, problem = open_catalog(catalog)
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
        with gr.Tab("Segmentation"):
            _segmentation_tab(session, source, upload, sources)
        with gr.Tab("Catalog"):
            _catalog_tab(app, view, problem)
    return app


def _allocation_tab(
    session: gr.State, source: gr.Dropdown, upload: gr.File, sources: ImageSources
) -> None:
    strategies = list_strategies()
    with gr.Row():
        query = gr.Textbox(DEFAULT_QUERY, label="query", elem_id="query")
        model = gr.Dropdown(
            list(MODELS),
            value=MODELS[0],
            label="model",
            allow_custom_value=True,
            info="offline:camvid ships with clusterlens; CLIPs need their weights on disk",
        )
        grid = gr.Slider(4, 64, value=32, step=1, label="grid (cells per side)")
        balancer = gr.Dropdown(list(BALANCERS), value="adaptive", label="balancer")
    # Strategies as radio buttons, not dropdowns: one click is the change (a dropdown
    # opens, filters and blurs first, 30-100 ms of the browser's time per change)
    with gr.Row():
        strategy_a = gr.Radio(
            strategies, value="cluster-cascade", label="strategy A", elem_id="strategy-a", scale=3
        )
        budget_a = gr.Slider(
            0, 1024, value=144, step=1, label="budget A (patches)", elem_id="budget-a", scale=1
        )
    with gr.Row():
        strategy_b = gr.Radio(
            strategies, value="foveated", label="strategy B", elem_id="strategy-b", scale=3
        )
        budget_b = gr.Slider(0, 1024, value=64, step=1, label="budget B (patches)", scale=1)
    with gr.Row():
        tokens = gr.Slider(
            0, 16384, value=0, step=64, label="token budget (0: one per patch)", elem_id="tokens"
        )
        gaze = gr.Textbox(
            "", label="gaze x, y (foveated; click an overlay to set it)", elem_id="gaze"
        )
    run = gr.Button("Allocate", variant="primary", elem_id="allocate")
    message = gr.Markdown(elem_id="allocation-message")
    with gr.Row():
        overlay_a = gr.Image(label="kept patches A", elem_id="overlay-a", **PICTURE)
        overlay_b = gr.Image(label="kept patches B", elem_id="overlay-b", **PICTURE)
    with gr.Row():
        tokens_a = gr.Image(label="token-budget map A", elem_id="tokens-a", **PICTURE)
        tokens_b = gr.Image(label="token-budget map B", elem_id="tokens-b", **PICTURE)
    accounting = gr.HTML(
        table_html(ACCOUNTING_HEADERS, []), label="accounting", elem_id="accounting"
    )
    with gr.Row():
        heat_a = gr.Image(label="balanced relevance A", **PICTURE)
        heat_b = gr.Image(label="balanced relevance B", **PICTURE)
    views = gr.Gallery(
        label="what relevance A is made of: each way of knowing, and the clusters",
        columns=4,
        height="auto",
        format=PICTURE_FORMAT,
        elem_id="views-a",
    )
    match = gr.JSON(label="query: parse, match, notes (A)")

    shared = [query, grid, balancer, model, tokens, gaze]

    def settings(text, cells, bal, name, total, where, strategy, budget) -> Settings:
        return Settings(text or "", strategy, int(budget), int(cells), bal, name, where, total)

    def allocate(state, src, file, *values) -> Any:
        *common, strat_a, bud_a, strat_b, bud_b = values
        first, second = settings(*common, strat_a, bud_a), settings(*common, strat_b, bud_b)
        state, a, b, rows, note = run_allocation(state, src, file, first, second, sources)
        _warn(note)
        keys = ("overlay", "tokens", "heat")
        pictures = [side and side[key] for side in (a, b) for key in keys]
        table = table_html(ACCOUNTING_HEADERS, rows)
        return state, *pictures, a and a["views"], table, a and a["match"], note

    full_in = [session, source, upload, *shared, strategy_a, budget_a, strategy_b, budget_b]
    full_out = [
        session,
        overlay_a,
        tokens_a,
        heat_a,
        overlay_b,
        tokens_b,
        heat_b,
        views,
        accounting,
        match,
        message,
    ]
    run.click(allocate, full_in, full_out, api_name="allocate")
    query.submit(allocate, full_in, full_out, api_name=False)

    # A strategy or budget change redraws that side's overlay and token map only: the
    # relevance does not depend on them, and every picture sent costs the browser time.
    for side, strategy, budget, overlay, token_picture in (
        ("A", strategy_a, budget_a, overlay_a, tokens_a),
        ("B", strategy_b, budget_b, overlay_b, tokens_b),
    ):

        def one_side(state, src, file, *values, side=side) -> Any:
            state, result, rows, note = rerender_side(
                state, src, file, settings(*values), side, sources
            )
            _warn(note)
            table = table_html(ACCOUNTING_HEADERS, rows)
            return state, result and result["overlay"], result and result["tokens"], table, note

        side_in = [session, source, upload, *shared, strategy, budget]
        side_out = [session, overlay, token_picture, accounting, message]
        name = f"rerender_{side.lower()}"
        # .change, not .input: a dropdown also reported an "input" when it lost focus,
        # which made every strategy change two requests, the second waiting on the first
        strategy.change(one_side, side_in, side_out, api_name=name, **QUICK)
        budget.release(one_side, side_in, side_out, api_name=False, **QUICK)

    def both_sides(state, src, file, *values) -> Any:
        *common, strat_a, bud_a, strat_b, bud_b = values
        outputs = []
        for side, strategy, budget in (("A", strat_a, bud_a), ("B", strat_b, bud_b)):
            state, result, rows, note = rerender_side(
                state, src, file, settings(*common, strategy, budget), side, sources
            )
            if result is None:
                _warn(note)
                return state, None, None, None, None, table_html(ACCOUNTING_HEADERS, rows), note
            outputs += [result["overlay"], result["tokens"]]
        return state, *outputs, table_html(ACCOUNTING_HEADERS, rows), note

    both_out = [session, overlay_a, tokens_a, overlay_b, tokens_b, accounting, message]
    tokens.release(both_sides, full_in, both_out, api_name=False, **QUICK)
    gaze.submit(both_sides, full_in, both_out, api_name=False, **QUICK)

    def clicked(state, src, file, evt: gr.SelectData) -> Any:
        x, y = evt.index  # pixel of the shown picture, which the image is scaled to
        try:
            return click_gaze(state, src, file, x, y, sources)
        except USER_ERRORS:
            return state, ""  # no image yet: nothing to look at

    for overlay in (overlay_a, overlay_b):
        overlay.select(clicked, [session, source, upload], [session, gaze], api_name=False).then(
            both_sides, full_in, both_out, api_name=False, **QUICK
        )


def _warn(note: str) -> None:
    if note.startswith("⚠️"):
        gr.Warning(note)


def _regions_tab(
    session: gr.State, source: gr.Dropdown, upload: gr.File, sources: ImageSources
) -> None:
    with gr.Row():
        method = gr.Dropdown(list(REGION_METHODS), value="fast", label="method")
        segments = gr.Slider(8, 1000, value=100, step=1, label="segments")
        merge = gr.Slider(0, 10, value=0, step=0.1, label="merge clusters under (% of image)")
        groups = gr.Slider(
            0, 64, value=0, step=1, label="hierarchy: coarse groups (0: off)", elem_id="groups"
        )
    truth = gr.File(
        label="ground truth for the metrics (BSDS .mat, or a label image)",
        file_types=[".mat", "image"],
        type="filepath",
        elem_id="regions-truth",
    )
    run = gr.Button("Cluster", variant="primary", elem_id="cluster")
    message = gr.Markdown(elem_id="regions-message")
    with gr.Row():
        overlay = gr.Image(
            label="region boundaries (coarse groups in cyan)", elem_id="regions-overlay", **PICTURE
        )
        metrics = gr.Dataframe(headers=["metric", "value"], label="superpixel metrics")

    def regions(state, src, file, name, count, below, coarse, labels) -> Any:
        state, picture, rows, note = run_regions(
            state, src, file, name, int(count), float(below), int(coarse), labels, sources
        )
        _warn(note)
        return state, picture, rows, note

    run.click(
        regions,
        [session, source, upload, method, segments, merge, groups, truth],
        [session, overlay, metrics, message],
        api_name="regions",
    )


def _segmentation_tab(
    session: gr.State, source: gr.Dropdown, upload: gr.File, sources: ImageSources
) -> None:
    with gr.Row():
        classes = gr.Textbox(DEFAULT_CLASSES, label="classes (comma-separated)", elem_id="classes")
        model = gr.Dropdown(
            list(SEGMENT_MODELS),
            value=SEGMENT_MODELS[0],
            label="dense model",
            allow_custom_value=True,
        )
        proposer = gr.Dropdown(
            list(PROPOSERS),
            value=PROPOSERS[0],
            allow_custom_value=True,
            label="proposer (or sam:/path.pth, sam2:/path.pt)",
        )
    with gr.Row():
        dynamic = gr.Checkbox(True, label="dynamic queries (else a blind grid)")
        hierarchical = gr.Checkbox(True, label="coarse-to-fine refinement")
        merging = gr.Checkbox(True, label="semantic merging (else painting)")
        background = gr.Checkbox(False, label="background class")
    run = gr.Button("Segment", variant="primary", elem_id="segment")
    message = gr.Markdown(elem_id="segment-message")
    with gr.Row():
        prompts = gr.Image(label="image and prompts", elem_id="segment-prompts", **PICTURE)
        labels = gr.Image(label="label map", elem_id="segment-labels", **PICTURE)
    legend = gr.HTML(elem_id="segment-legend")
    with gr.Row():
        before = gr.Image(label="before refinement", elem_id="segment-before", **PICTURE)
        after = gr.Image(label="after refinement", elem_id="segment-after", **PICTURE)
    seconds = gr.Dataframe(headers=["stage", "s"], label="time per stage")

    def segment(state, src, file, *values) -> Any:
        state, result, note = run_segmentation(state, src, file, SegmentSettings(*values), sources)
        _warn(note)
        keys = ("prompts", "labels", "legend", "before", "after", "seconds")
        return state, *(result[key] if result else None for key in keys), note

    run.click(
        segment,
        [
            session,
            source,
            upload,
            classes,
            model,
            proposer,
            dynamic,
            hierarchical,
            merging,
            background,
        ],
        [session, prompts, labels, legend, before, after, seconds, message],
        api_name="segment",
    )


def _catalog_tab(app: gr.Blocks, view: CatalogView | None, problem: str) -> None:
    if view is None:
        gr.Markdown(problem, elem_id="catalog-message")
        return
    gr.Markdown(f"Catalog `{view.db}` ({len(view.paths)} images), opened read-only.")
    with gr.Tabs():
        with gr.Tab("Browse"):
            _catalog_browse(app, view)
        with gr.Tab("Problems") as problems_tab:
            _problems_view(problems_tab, view)


def _catalog_browse(app: gr.Blocks, view: CatalogView) -> None:
    clusterings = [clustering.label for clustering in view.clusterings()]
    models = view.yolo_models()
    message = gr.Markdown(elem_id="catalog-message")
    with gr.Row():
        with gr.Column(scale=1):
            clustering = gr.Dropdown(
                clusterings, value=clusterings[0] if clusterings else None, label="clustering"
            )
            sizes = gr.Dataframe(
                headers=["cluster", "images"], label="cluster sizes", elem_id="cluster-sizes"
            )
            cluster = gr.Dropdown([], label="cluster", elem_id="cluster-pick")
        with gr.Column(scale=2):
            members = gr.Gallery(
                label="the cluster's images (click one)",
                columns=6,
                height=320,
                elem_id="cluster-grid",
                **THUMBS,
            )
    with gr.Row():
        model = gr.Dropdown(models, value=models[0] if models else None, label="YOLO model")
        key = gr.Dropdown(list(SORT_KEYS), value=SORT_KEYS[0], label="sort by")
        descending = gr.Checkbox(True, label="highest first", elem_id="descending")
        component = gr.Dropdown(list(DISTANCE_KEYS), value="total", label="distance")
    ranked = gr.Gallery(
        label="images sorted (click one)",
        columns=8,
        height=260,
        elem_id="sorted-grid",
        **THUMBS,
    )
    detail_line = gr.Markdown(elem_id="catalog-detail")
    with gr.Row():
        picture = gr.Image(label="predictions", elem_id="catalog-image", **PICTURE)
        losses = gr.Dataframe(headers=["", "value"], label="losses and metrics")
    with gr.Row():
        outgoing = gr.Gallery(
            label="nearest by dist[i][j]: its output explains j's objects",
            columns=5,
            height=200,
            elem_id="near-out",
            **THUMBS,
        )
        incoming = gr.Gallery(
            label="nearest by dist[j][i]: j's output explains its objects",
            columns=5,
            height=200,
            elem_id="near-in",
            **THUMBS,
        )
    member_ids, ranked_ids = gr.State([]), gr.State([])

    def overview(label) -> Any:
        rows, ids, line = cluster_overview(view, label, empty=([], []))
        return rows, gr.update(choices=ids, value=ids[0] if ids else None), line

    def grid(label, number) -> Any:
        if number is None:
            return [], [], ""
        return cluster_grid(view, label, number, empty=([], []))

    def sort(name, by, highest) -> Any:
        return sorted_grid(view, name, by, highest, empty=([], []))

    def detail(ids, name, distance, evt: gr.SelectData) -> Any:
        if evt.index is None or evt.index >= len(ids):
            return None, [], [], [], ""
        return image_detail(view, ids[evt.index], name, distance, empty=(None, [], [], []))

    clustering.input(overview, clustering, [sizes, cluster, message], api_name=False)
    cluster.change(grid, [clustering, cluster], [members, member_ids, message], api_name=False)
    for control in (model, key, descending):
        control.input(sort, [model, key, descending], [ranked, ranked_ids, message], api_name=False)
    detail_out = [picture, losses, outgoing, incoming, detail_line]
    members.select(detail, [member_ids, model, component], detail_out, api_name=False)
    ranked.select(detail, [ranked_ids, model, component], detail_out, api_name=False)

    def opened(label, name, by, highest) -> Any:
        rows, choice, line = overview(label)
        items, ids, sorted_line = sort(name, by, highest)
        return rows, choice, items, ids, line or sorted_line

    # filled when a page opens: each page reads the catalog as it is then
    app.load(
        opened,
        [clustering, model, key, descending],
        [sizes, cluster, ranked, ranked_ids, message],
        api_name=False,
    )


def _problems_view(tab: gr.Tab, view: CatalogView) -> None:
    """The rankings of ``clusterlens catalog issues`` as thumbnails; a click shows why."""
    models = view.yolo_models()
    with gr.Row():
        section = gr.Radio(
            [(title, name) for name, title in SECTIONS.items()],
            value="label_errors",
            label="ranking",
            elem_id="problem-section",
            scale=3,
        )
        model = gr.Dropdown(models, value=models[0] if models else None, label="YOLO model")
        top = gr.Slider(1, MAX_TOP, value=DEFAULT_TOP, step=1, label="top N", elem_id="problem-top")
        # pixels reads every image file: a user with a large catalog may leave it out
        signals = gr.CheckboxGroup(
            list(DUPLICATE_SIGNALS),
            value=list(DUPLICATE_SIGNALS),
            label="near-duplicate signals",
            elem_id="problem-signals",
        )
    message = gr.Markdown(elem_id="problem-message")
    grid = gr.Gallery(
        label="ranked, best first (click one)", columns=8, height=260, elem_id="problem-grid",
        **THUMBS,
    )  # fmt: skip
    with gr.Row():
        picture = gr.Image(label="the problem", elem_id="problem-image", **PICTURE)
        detail = gr.Markdown(elem_id="problem-detail")
    near = gr.Gallery(
        label="the images it is compared with (its nearest by the model's embedding)",
        columns=8, height=250, elem_id="problem-near", **THUMBS,
    )  # fmt: skip
    ranked = gr.State([])  # the ranked items of this session, for the click

    def rank(name, chosen, count, duplicate_signals) -> Any:
        items, found, line = problem_grid(
            view, name, chosen, int(count), duplicate_signals, empty=([], [])
        )
        _warn(line)
        return items, found, line, None, "", []  # the old detail belongs to the old ranking

    def show(found, evt: gr.SelectData) -> Any:
        if evt.index is None or evt.index >= len(found):
            return None, [], ""
        return problem_detail(view, found[evt.index], empty=(None, []))

    def first_rank(found, name, chosen, count, duplicate_signals) -> Any:
        # coming back to the view keeps what it showed (and the click's detail)
        if found:
            return [gr.skip()] * len(rank_out)
        return rank(name, chosen, count, duplicate_signals)

    rank_in = [section, model, top, signals]
    rank_out = [grid, ranked, message, picture, detail, near]
    # ranked when the view is first opened, not when the page loads: ranking a large
    # catalog takes seconds, and most visits never open this view
    tab.select(first_rank, [ranked, *rank_in], rank_out, api_name=False)
    for control in (section, model, top, signals):
        control.input(rank, rank_in, rank_out, api_name=False, trigger_mode="always_last")
    grid.select(show, ranked, [picture, near, detail], api_name=False)


def launch(
    host: str = "127.0.0.1",
    port: int = 7860,
    images: str | None = None,
    catalog: str | None = None,
    block: bool = True,
) -> gr.Blocks:
    """Start the app on ``host:port`` and print its URL (never a share link)."""
    app = build_app(ImageSources.scan(images), catalog)
    if catalog is not None:
        _, problem = open_catalog(catalog)
        if problem:  # also in the catalog tab; said here so a typo is seen at once
            print(f"clusterlens app: {problem}", flush=True)
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
