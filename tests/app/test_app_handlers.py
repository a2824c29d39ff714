"""The app's handlers called directly: context reuse, independent sessions, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from clusterlens.allocate import list_strategies
from clusterlens.app.handlers import (
    DISPLAY_SIDE,
    EMPTY_QUERY,
    MODELS,
    Settings,
    content_key,
    gaze_from_click,
    parse_gaze,
    rerender_side,
    run_allocation,
)
from clusterlens.app.session import (
    MAX_CONTEXTS,
    SAMPLE_CHOICE,
    UPLOAD_CHOICE,
    AppSession,
    ImageSources,
)

#: A region alone loads no model (docs/allocate.md): fast tests use it.
CORNER = "the top-left corner"


def corner(strategy: str = "topk", budget: int = 8) -> Settings:
    return Settings(CORNER, strategy, budget, grid=8)


def test_first_call_makes_a_session_and_pictures_of_the_image(street_file):
    session, a, b, rows, message = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), corner(), corner("uniform", 4)
    )
    assert isinstance(session, AppSession) and len(session.contexts) == 1
    assert message == ""
    assert a["overlay"].shape == a["heat"].shape == (96, 128, 3)
    assert a["accounting"]["patches_kept"] == 8 and b["accounting"]["patches_kept"] == 4
    assert a["match"]["query_parse"]["regions"] == ["top-left"]
    # the corner query keeps its 8 patches in the top-left quarter: the rest is dimmed
    assert a["overlay"][60:, 80:].max() < a["overlay"][:40, :50].max()
    table = {row[0]: row[1:] for row in rows}
    assert table["patches_kept"] == ["8", "4"]
    assert float(table["decode_ms"][0]) > 0 and table["decode_ms"][1] == ""  # A decoded
    assert "load_model_ms" not in table  # a region alone loads no model
    assert any(key.startswith("stage_ms: ") for key in table)
    # what A's relevance is made of: a region alone weighs 0.25 / 0.25 / 0.5
    captions = [caption for _, caption in a["views"]]
    assert captions == [
        "information (weight 0.25)",
        "salience (weight 0.25)",
        "coupling (weight 0.50)",
    ]
    assert all(picture.shape == (96, 128, 3) for picture, _ in a["views"])
    assert b["views"] == []  # B shows its overlay and relevance only


def test_a_cluster_strategy_also_shows_its_clusters(street_file):
    _, a, *_ = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), corner("cluster-cascade"), None
    )
    picture, caption = a["views"][-1]
    assert caption.endswith(" clusters") and int(caption.split()[0]) > 1
    assert (picture == (255, 220, 0)).all(axis=2).any()  # boundaries drawn


def test_second_render_reuses_the_decoded_image(street_file):
    session, first, *_ = run_allocation(None, UPLOAD_CHOICE, str(street_file), corner(), None)
    context = session.contexts[next(iter(session.contexts))]
    assert "decoded image" not in first["accounting"]["cached"]  # decoded by this call
    assert first["accounting"]["decode_ms"] > 0
    session, second, *_ = run_allocation(session, UPLOAD_CHOICE, str(street_file), corner(), None)
    assert session.contexts[next(iter(session.contexts))] is context
    assert "decode_ms" not in second["accounting"]  # nothing was decoded this time
    assert "decoded image" in second["accounting"]["cached"]
    np.testing.assert_array_equal(first["overlay"], second["overlay"])


@pytest.mark.slow  # loads the offline model and the sentence model (~10 s)
def test_budget_change_reuses_the_model_passes(street_file):
    session, *_ = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), Settings("sky", "topk", 8, 8), None
    )
    session, again, *_ = run_allocation(
        session, UPLOAD_CHOICE, str(street_file), Settings("sky", "topk", 16, 8), None
    )
    cached = again["accounting"]["cached"]
    assert "decoded image" in cached and "model passes" in cached
    assert again["accounting"]["encoder_gflops"] == 0  # no model pass ran for the re-render
    assert again["accounting"]["patches_kept"] == 16
    # adaptive weights leave information and salience out; the page still shows them
    skipped = again["accounting"]["skipped"]
    assert skipped == ["information", "salience"]
    for (picture, caption), name in zip(again["views"][:2], skipped, strict=True):
        assert caption.startswith(name) and caption.endswith(", not used)")
        assert (picture != picture[0, 0]).any()  # the real map, not zeros


def test_sessions_do_not_share_contexts(street_file, tmp_path):
    mine, *_ = run_allocation(None, UPLOAD_CHOICE, str(street_file), corner(), None)
    theirs, *_ = run_allocation(None, SAMPLE_CHOICE, None, corner(), None)
    assert mine is not theirs
    assert [key[0] for key in mine.contexts] == ["file"]
    assert [key[0] for key in theirs.contexts] == ["sample"]
    assert not {id(c) for c in mine.contexts.values()} & {id(c) for c in theirs.contexts.values()}
    # the sample session decoding the upload gets its own context, not mine
    theirs, *_ = run_allocation(theirs, UPLOAD_CHOICE, str(street_file), corner(), None)
    key = next(iter(mine.contexts))
    assert theirs.contexts[key] is not mine.contexts[key]


def test_a_session_keeps_only_the_latest_contexts(tmp_path):
    session, keys = None, []
    for index in range(MAX_CONTEXTS + 1):
        path = tmp_path / f"image{index}.png"
        Image.fromarray(np.full((32, 32, 3), index * 10, np.uint8)).save(path)
        keys.append(("file", content_key(path)))
        session, *_ = run_allocation(session, UPLOAD_CHOICE, str(path), corner(), None)
    assert list(session.contexts) == keys[1:]  # the oldest was dropped


def test_the_same_bytes_saved_anew_reuse_the_context(street_file, tmp_path):
    # Gradio saves each upload again: another path and mtime, the same image
    session, *_ = run_allocation(None, UPLOAD_CHOICE, str(street_file), corner(), None)
    again = tmp_path / "again" / "street.png"
    again.parent.mkdir()
    again.write_bytes(street_file.read_bytes())
    session, a, *_ = run_allocation(session, UPLOAD_CHOICE, str(again), corner(), None)
    assert len(session.contexts) == 1 and "decoded image" in a["accounting"]["cached"]


def test_unreadable_upload_is_a_message(broken_file):
    session, a, b, rows, message = run_allocation(
        None, UPLOAD_CHOICE, str(broken_file), corner(), None
    )
    assert a is None and b is None and rows == []
    assert message.startswith("⚠️") and "broken.png" in message
    assert session.contexts == {}


@pytest.mark.parametrize(
    ("source", "upload", "expected"),
    [
        (UPLOAD_CHOICE, None, "no image"),
        ("../../etc/passwd", None, "unknown image"),  # only names listed at start-up
    ],
)
def test_missing_or_unlisted_image_is_a_message(source, upload, expected):
    *_, message = run_allocation(None, source, upload, corner(), None)
    assert message.startswith("⚠️") and expected in message


def test_bad_settings_are_a_message(street_file):
    *_, message = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), Settings(CORNER, "no-such", 8, 8), None
    )
    assert message.startswith("⚠️") and "no-such" in message
    *_, message = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), Settings(CORNER, "topk", -1, 8), None
    )
    assert message.startswith("⚠️") and "budget" in message


def test_empty_query_still_allocates_and_says_so(street_file):
    _, a, _, _, message = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), Settings("  ", "topk", 8, 8), None
    )
    assert message == EMPTY_QUERY
    assert a["accounting"]["patches_kept"] == 8
    assert a["match"]["query_match"] is None  # no model was asked


def test_images_folder_files_are_offered_by_name(tmp_path, street_file):
    sources = ImageSources.scan(street_file.parent)
    assert sources.choices[-1] == "street.png"
    _, a, *_, message = run_allocation(None, "street.png", None, corner(), None, sources)
    assert message == "" and a["overlay"].shape == (96, 128, 3)
    with pytest.raises(FileNotFoundError, match="not a folder"):
        ImageSources.scan(tmp_path / "missing")


@pytest.mark.parametrize("strategy", list_strategies())
def test_every_strategy_offered_runs_in_the_page(street_file, strategy):
    _, a, *_, message = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), corner(strategy, 16), None
    )
    # 16: quadtree's leaves come 3 at a time (1, 4, 7, ... 16), and it never exceeds K
    assert message == "" and a["accounting"]["patches_kept"] == 16


def test_a_budget_above_the_grid_is_explained(street_file):
    _, a, *_ = run_allocation(None, UPLOAD_CHOICE, str(street_file), corner("topk", 500), None)
    assert a["accounting"]["patches_kept"] == 64  # the whole 8x8 grid
    assert "64" in a["match"]["budget_note"]


def test_large_images_are_shown_at_display_size(tmp_path):
    path = tmp_path / "wide.png"
    pixels = np.full((500, 1000, 3), 200, np.uint8)
    pixels[:, :500] = 255  # the corner query keeps patches in the top-left quarter
    Image.fromarray(pixels).save(path)
    _, a, *_ = run_allocation(None, UPLOAD_CHOICE, str(path), corner("topk", 8), None)
    assert a["overlay"].shape == a["heat"].shape == (DISPLAY_SIDE // 2, DISPLAY_SIDE, 3)
    assert all(picture.shape[:2] == (320, 640) for picture, _ in a["views"])
    # kept patches (top-left quarter) as they are, the right half dimmed (200 * 0.3)
    assert a["overlay"][40, 40].min() > 240 and a["overlay"][200, 600].max() < 80


def test_a_side_rerenders_alone_and_keeps_the_other_sides_accounting(street_file):
    session, a, b, *_ = run_allocation(
        None, UPLOAD_CHOICE, str(street_file), corner(), corner("uniform", 4)
    )
    session, side, rows, message = rerender_side(
        session, UPLOAD_CHOICE, str(street_file), corner("topk", 12), "A"
    )
    assert message == "" and side["heat"] is None and side["views"] == []  # not redrawn
    assert side["overlay"].shape == (96, 128, 3) and side["tokens"].shape[1] == DISPLAY_SIDE
    table = {row[0]: row[1:] for row in rows}
    assert table["patches_kept"] == ["12", "4"]  # B's figures kept from the full run
    assert "decoded image" in side["accounting"]["cached"]
    session, side, rows, _ = rerender_side(
        session, UPLOAD_CHOICE, str(street_file), corner("uniform", 9), "B"
    )
    assert {row[0]: row[1:] for row in rows}["patches_kept"] == ["12", "9"]
    with pytest.raises(ValueError, match="side"):
        rerender_side(session, UPLOAD_CHOICE, str(street_file), corner(), "C")


def test_the_gaze_moves_the_foveated_patches(tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(path)
    kept = {}
    for gaze in ((0.1, 0.1), (0.9, 0.9)):
        settings = Settings("", "foveated", 6, grid=8, balancer="fixed", gaze=gaze)
        _, a, *_ = run_allocation(None, UPLOAD_CHOICE, str(path), settings, None)
        boxes = a["overlay"]  # kept patches are bright, the rest dimmed
        kept[gaze] = (boxes[:32, :32].mean(), boxes[32:, 32:].mean())
    # looking at the top-left keeps more there than looking at the bottom-right
    assert kept[(0.1, 0.1)][0] > kept[(0.9, 0.9)][0]
    assert kept[(0.9, 0.9)][1] > kept[(0.1, 0.1)][1]


def test_gaze_text_and_clicks():
    assert parse_gaze("") is None and parse_gaze(" 0.25, 0.75 ") == (0.25, 0.75)
    assert parse_gaze("(0.5, 0.5)") == (0.5, 0.5)
    for bad in ("0.5", "a, b", "1.5, 0.2"):
        with pytest.raises(ValueError, match="gaze"):
            parse_gaze(bad)
    # a click at pixel (x, y) of the shown picture, as fractions of its size
    assert gaze_from_click(0, 0, (480, 640, 3)) == "0.000, 0.000"
    assert gaze_from_click(639, 479, (480, 640, 3)) == "1.000, 1.000"
    assert parse_gaze(gaze_from_click(320, 120, (480, 640, 3))) == pytest.approx((0.501, 0.251))


def test_a_model_without_weights_is_a_message_naming_it(street_file):
    settings = Settings("the sky", "topk", 8, grid=8, model="open_clip:ViT-B-16/laion2b_s34b_b88k")
    *_, message = run_allocation(None, UPLOAD_CHOICE, str(street_file), settings, None)
    assert message.startswith("⚠️") and "ViT-B-16" in message and "not on this machine" in message
    assert MODELS[0] == "offline:camvid"


@pytest.mark.slow  # tiny random CLIP: the open-vocabulary path end to end (~5 s)
def test_another_registry_model_runs(street_file):
    settings = Settings("a car", "topk", 8, grid=8, model="open_clip:tiny")
    _, a, *_, message = run_allocation(None, UPLOAD_CHOICE, str(street_file), settings, None)
    assert not message.startswith("⚠️") and a["accounting"]["patches_kept"] == 8


def test_the_accounting_table_is_escaped_html():
    from clusterlens.app.handlers import table_html

    table = table_html(["", "A"], [["cached", "<b>&"]])
    assert table.count("<tr>") == 2 and "<th" in table
    assert "&lt;b&gt;&amp;" in table and "<b>" not in table
