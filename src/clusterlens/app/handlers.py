"""The app's work, as plain functions of plain values (no Gradio here), so tests call
them directly and the UI in :mod:`clusterlens.app.ui` only wires them to components.

Every handler takes the session's :class:`AppSession` (None before the first call)
and returns it first, with the pictures and tables after, and a message last: bad
input (an unreadable file, an empty query, a method that needs a checkpoint) becomes
that message, never an exception that would reach the server.
"""

from __future__ import annotations

import html
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from clusterlens.app.session import SAMPLE_CHOICE, UPLOAD_CHOICE, AppSession, ImageSources
from clusterlens.context import ImageContext

log = logging.getLogger(__name__)

#: The errors the library raises for bad input (see ARCHITECTURE.md, "Conventions");
#: OSError covers files PIL cannot read. Anything else is a bug: logged with its trace.
USER_ERRORS = (ValueError, FileNotFoundError, KeyError, TypeError, OSError)
#: Pictures are drawn at most this many pixels on a side: the page shows them about 450
#: px wide, and at 1024^2 encoding, sending and decoding eight pictures cost the browser
#: more than the allocation itself. Patch boxes are normalised, so they fit any size.
DISPLAY_SIDE = 640
#: Accounting rows shown, in this order (see docs/allocate.md, "Accounting").
ACCOUNTING_KEYS = (
    "total_ms",
    "decode_ms",
    "load_model_ms",
    "match_ms",
    "encoder_ms",
    "encoder_gflops",
    "cached",
    "patches_kept",
    "tokens_kept",
    "tokens_full_grid",
    "token_ratio",
)
ACCOUNTING_HEADERS = ["", "A", "B"]
#: An empty query is allowed (docs/allocate.md, "Defined behaviour at the edges"), but
#: the page says what it means rather than silently showing a query-free allocation.
EMPTY_QUERY = "empty query: patches chosen by information and salience alone"


#: Query-coupling models offered in the page: the shipped one first (the only one with
#: weights in the package), then CLIPs that need their weights on disk (the page says
#: where to put them when missing). The picker also takes any other registry name.
MODELS = (
    "offline:camvid",
    "open_clip:ViT-B-16/laion2b_s34b_b88k",
    "hf:openai/clip-vit-base-patch16",
    "hf:google/siglip-base-patch16-224",
)
SIDES = ("A", "B")


@dataclass
class Settings:
    """One side of the comparison: a strategy, a budget and what they share.

    ``gaze`` (x, y in [0, 1]) is passed only to the foveated strategy; ``tokens`` is the
    total token budget shared out by score (0: every patch costs one grid cell's tokens).
    """

    query: str
    strategy: str
    budget: int
    grid: int = 32
    balancer: str = "adaptive"
    model: str = MODELS[0]
    gaze: tuple[float, float] | str | None = None  # a text is read by parse_gaze
    tokens: int = 0


def open_image(
    session: AppSession, source: str, upload: str | None, sources: ImageSources
) -> tuple[ImageContext, bool]:
    """The session's context for the chosen image, decoding it only the first time;
    and whether it was decoded now.

    Raises:
        ValueError: no file uploaded, or a name not listed under ``--images``.
        OSError: the file cannot be read as an image.
    """
    if source == SAMPLE_CHOICE:
        from clusterlens.cli.demo import SAMPLE, sample_image  # the demo's bundled image

        return session.context(("sample", SAMPLE), sample_image)
    if source == UPLOAD_CHOICE or not source:
        if not upload:
            raise ValueError("no image: upload one, or pick the sample in 'image'")
        path = Path(upload)
    elif source in sources.files:  # only files listed at start-up: no path from the page
        path = sources.files[source]
    else:
        raise ValueError(f"unknown image {source!r}; choose one of {sources.choices}")
    return session.context(("file", content_key(path)), str(path))


def content_key(path: Path) -> str:
    """The file's size and Adler-32 checksum: Gradio saves every upload anew (a new path
    or mtime, so :func:`clusterlens.context.fingerprint` would change), while the same
    bytes are the same image; reading a few MB costs a few ms."""
    data = path.read_bytes()
    return f"{len(data)}:{zlib.adler32(data):08x}"


def run_allocation(
    session: AppSession | None,
    source: str,
    upload: str | None,
    first: Settings,
    second: Settings | None,
    sources: ImageSources | None = None,
) -> tuple[AppSession, dict[str, Any] | None, dict[str, Any] | None, list[list[Any]], str]:
    """Allocate with ``first`` (and ``second``, on the same image and context).

    Returns:
        the session; for each side a dict of ``overlay`` and ``heat`` (uint8 RGB
        pictures), ``match`` (parse, match, notes), ``accounting`` and ``views``
        (``first`` only: each way of knowing and the clusters, as captioned pictures;
        None for a side not run); the accounting table rows; and a message ('' when all
        went well).
    """
    session = session or AppSession()
    try:
        with session.lock:
            context, decoded_now = open_image(session, source, upload, sources or ImageSources())
            results = [_allocate(session, context, first, decoded_now, heat=True, views=True)]
            results.append(_allocate(session, context, second, heat=True) if second else None)
            pairs = zip(SIDES, results, strict=True)
            session.accounting = {side: result["accounting"] for side, result in pairs if result}
    except USER_ERRORS as error:
        return session, None, None, [], f"⚠️ {user_message(error)}"
    except Exception as error:  # a bug: keep the server up, say so, keep the trace
        log.exception("allocation failed")
        return session, None, None, [], f"⚠️ internal error ({type(error).__name__}: {error})"
    note = "" if first.query.strip() else EMPTY_QUERY
    return session, results[0], results[1], accounting_rows(*results), note


def rerender_side(
    session: AppSession | None,
    source: str,
    upload: str | None,
    settings: Settings,
    side: str,
    sources: ImageSources | None = None,
) -> tuple[AppSession, dict[str, Any] | None, list[list[Any]], str]:
    """Re-run one side after its strategy, budget or gaze changed: only what that
    change can alter (the kept-patch overlay and the token-budget map) is drawn again,
    and the accounting table is rebuilt with the other side's last figures.

    The relevance and the ways of knowing do not depend on the strategy or the budget,
    so they are neither drawn nor sent again: this is the path that must stay under
    issue 18's 300 ms at 1024^2.

    Returns:
        the session, the side's dict (``overlay``, ``tokens``, ``accounting``,
        ``match``; None on error), the accounting rows and a message.
    """
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    session = session or AppSession()
    try:
        with session.lock:
            context, decoded_now = open_image(session, source, upload, sources or ImageSources())
            result = _allocate(session, context, settings, decoded_now)
            session.accounting[side] = result["accounting"]
            other = session.accounting.get(SIDES[1 - SIDES.index(side)])
    except USER_ERRORS as error:
        return session, None, [], f"⚠️ {user_message(error)}"
    except Exception as error:  # a bug: keep the server up, say so, keep the trace
        log.exception("re-render failed")
        return session, None, [], f"⚠️ internal error ({type(error).__name__}: {error})"
    sides = (result["accounting"], other) if side == "A" else (other or {}, result["accounting"])
    rows = accounting_rows(*({"accounting": a} if a is not None else None for a in sides))
    note = "" if settings.query.strip() else EMPTY_QUERY
    return session, result, rows, note


def parse_gaze(text: str | None) -> tuple[float, float] | None:
    """``"x, y"`` (each in [0, 1]) as a gaze point; None for an empty text.

    Raises:
        ValueError: not two numbers in [0, 1].
    """
    if not text or not text.strip():
        return None
    try:
        x, y = (float(part) for part in text.replace("(", "").replace(")", "").split(","))
    except ValueError:
        raise ValueError(f"gaze must be 'x, y' with x and y in [0, 1], got {text!r}") from None
    if not (0 <= x <= 1 and 0 <= y <= 1):
        raise ValueError(f"gaze must lie in [0, 1] x [0, 1] (fractions of the image), got {text!r}")
    return x, y


def gaze_from_click(x: float, y: float, shape: tuple[int, ...]) -> str:
    """The gaze text for a click at pixel (x, y) of a picture of ``shape`` (H, W, ...):
    fractions of its width and height, so it holds for the full-size image too."""
    height, width = shape[:2]
    fx = min(max(x / max(width - 1, 1), 0.0), 1.0)
    fy = min(max(y / max(height - 1, 1), 0.0), 1.0)
    return f"{fx:.3f}, {fy:.3f}"


def _allocate(
    session: AppSession,
    context: ImageContext,
    settings: Settings,
    decoded_now: bool = False,
    heat: bool = False,
    views: bool = False,
) -> dict[str, Any]:
    """One side: the overlay, token-budget map, accounting and match; with ``heat`` its
    relevance heat map, with ``views`` what that relevance is made of."""
    from clusterlens.pipeline import select_patches  # local: loads models only when needed
    from clusterlens.viz.render import allocation_overlay, heat_map, mark_gaze, token_map

    foveated = settings.strategy == "foveated"
    gaze = parse_gaze(settings.gaze) if isinstance(settings.gaze, str) else settings.gaze
    selection = select_patches(
        context,
        settings.query.strip() or None,
        settings.strategy,
        int(settings.budget),
        model=settings.model or MODELS[0],
        grid=int(settings.grid),
        balancer=settings.balancer,
        gaze=gaze if foveated else None,  # others would only note they ignore it
        token_budget=int(settings.tokens) or None,
    )
    allocation = selection.allocation
    accounting = allocation.accounting()
    if decoded_now:  # the session decoded the image just before: this call paid for it
        accounting["cached"].remove("decoded image")
        accounting["decode_ms"] = round(context.decode_ms, 2)
        accounting["total_ms"] = round(accounting["total_ms"] + context.decode_ms, 2)
    picture = shown_image(session, context)  # selection.image is the context's image
    overlay = allocation_overlay(picture, allocation)
    if foveated:  # where the strategy looks from (the centre until the image is clicked)
        mark_gaze(overlay, gaze or (0.5, 0.5))
    return {
        "overlay": overlay,
        "tokens": token_map(picture, allocation, side=DISPLAY_SIDE),
        "heat": heat_map(shown(selection.relevance)) if heat else None,
        "match": {
            "query": settings.query,
            "query_parse": allocation.meta.get("query_parse"),
            "query_match": allocation.meta.get("query_match"),
            "balancer_weights": allocation.meta.get("balancer_weights"),
            "budget_note": allocation.meta.get("budget_note"),
            "notes": selection.notes,
        },
        "accounting": accounting,
        "views": _views(context, selection) if views else [],
    }


def _views(context: ImageContext, selection: Any) -> list[tuple[np.ndarray, str]]:
    """Each way of knowing as a heat map with its balancer weight, and the cluster map's
    boundaries when the strategy clustered: what the balanced relevance is made of.

    A way the allocation skipped (negligible weight) is zeros in the selection; the page
    shows the real map from the context instead (computed once per image, then reused),
    since seeing what was left out is the point of looking.
    """
    from clusterlens.relevance import QUERY_FREE_WAYS, WAYS
    from clusterlens.viz.render import boundary_overlay, heat_map

    weights = selection.allocation.meta.get("balancer_weights") or {}
    skipped = set(selection.allocation.cost.get("skipped", ()))
    ways = list(selection.ways)
    if skipped & set(QUERY_FREE_WAYS):
        ways[: len(QUERY_FREE_WAYS)] = context.query_free_ways([])
    views = []
    for name, way in zip(WAYS, ways, strict=True):
        caption = f"{name} (weight {weights.get(name, 0.0):.2f}"
        views.append((heat_map(shown(way)), caption + (", not used)" if name in skipped else ")")))
    if selection.clusters is not None:
        count = int(selection.clusters.max()) + 1
        labels = shown(selection.clusters.astype(np.int32), nearest=True)  # ids: never blend
        views.append((boundary_overlay(shown(selection.image), labels), f"{count} clusters"))
    return views


def shown(array: np.ndarray, nearest: bool = False) -> np.ndarray:
    """``array`` (H, W[, C]) resized to at most :data:`DISPLAY_SIDE` on its longer side
    (area averaging, or ``nearest`` for labels); unchanged when it already fits."""
    height, width = display_size(*array.shape[:2])
    if (height, width) == array.shape[:2]:
        return array
    interpolation = cv2.INTER_NEAREST if nearest else cv2.INTER_AREA
    return cv2.resize(array, (width, height), interpolation=interpolation)


def shown_image(session: AppSession, context: ImageContext) -> np.ndarray:
    """The context's image at display size, resized once per image and session (a
    1024^2 image takes about 13 ms to shrink, on every re-render otherwise)."""
    key = id(context)
    if key not in session.pictures:
        live = {id(kept) for kept in session.contexts.values()}
        session.pictures = {k: v for k, v in session.pictures.items() if k in live}
        session.pictures[key] = shown(context.rgb)
    return session.pictures[key]


def display_size(height: int, width: int) -> tuple[int, int]:
    """(height, width) of a picture of that size as the page is sent it."""
    scale = DISPLAY_SIDE / max(height, width)
    if scale >= 1:
        return height, width
    return max(1, round(height * scale)), max(1, round(width * scale))


def click_gaze(
    session: AppSession | None,
    source: str,
    upload: str | None,
    x: float,
    y: float,
    sources: ImageSources | None = None,
) -> tuple[AppSession, str]:
    """The gaze text for a click at pixel (x, y) of the shown overlay of the chosen
    image (the page sends only the click's position, never the picture back)."""
    session = session or AppSession()
    with session.lock:
        context, _ = open_image(session, source, upload, sources or ImageSources())
    return session, gaze_from_click(x, y, display_size(*context.rgb.shape[:2]))


def accounting_rows(first: dict[str, Any], second: dict[str, Any] | None) -> list[list[Any]]:
    """Rows [key, A, B] of the accounting: totals (those either side has: ``decode_ms``
    and ``load_model_ms`` only when that work ran), then one row per strategy stage."""
    sides = [first["accounting"], second["accounting"] if second else {}]
    shown = [key for key in ACCOUNTING_KEYS if any(key in side for side in sides)]
    rows = [[key, *(_cell(side.get(key)) for side in sides)] for key in shown]
    stages = list(dict.fromkeys(k for side in sides for k in side.get("stage_ms", {})))
    rows += [
        [f"stage_ms: {stage}", *(_cell(side.get("stage_ms", {}).get(stage)) for side in sides)]
        for stage in stages
    ]
    return rows


def table_html(headers: list[str], rows: list[list[Any]]) -> str:
    """``rows`` as a plain HTML table. The page shows the accounting so rather than as a
    Gradio Dataframe: re-rendering a Dataframe kept the browser busy 60-80 ms after
    every budget or strategy change, longer than drawing both pictures."""
    cell = 'style="text-align:left;padding:2px 8px;border-bottom:1px solid #ddd"'
    head = "".join(f"<th {cell}>{html.escape(str(value))}</th>" for value in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {cell}>{html.escape(str(value))}</td>" for value in row) + "</tr>"
        for row in rows
    )
    table = 'style="border-collapse:collapse;width:100%;font-size:0.9em"'
    return f"<table {table}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "(none)"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def user_message(error: BaseException) -> str:
    """What the page says for one of :data:`USER_ERRORS`."""
    # KeyError's str() is the repr of its key: show the text it was given instead
    text = error.args[0] if isinstance(error, KeyError) and error.args else str(error)
    if isinstance(error, OSError) and not isinstance(error, FileNotFoundError):
        return f"could not read the image: {text}"
    return str(text)
