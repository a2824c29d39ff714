"""The catalog tab's Problems view on a catalog with planted problems.

The catalog holds 12 generated shape images (real files and YOLO labels) with one
prediction per labelled object, written with the store's API, and four known
problems: one label file lost an object the model still finds (a ``missing`` label,
with a high cls loss), two images have nearly the same embedding (a near-duplicate
pair), one embedding is far from all others (an outlier), one image has a box loss
far above the rest (the hardest image).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import socket
from pathlib import Path

import numpy as np
import pytest

from clusterlens.app.catalog import CatalogView, open_catalog
from clusterlens.app.catalog_problems import (
    LabelErrorCandidate,
    problem_detail,
    problem_grid,
    side_by_side,
)
from clusterlens.catalog.dataset import read_labels
from clusterlens.catalog.label_errors import box_iou
from clusterlens.catalog.store import CatalogStore, ImageRecord
from clusterlens.catalog.synthetic import SHAPE_NAMES, make_shapes_dataset

MODEL = "yolo:shapes.pt"
COUNT = 12
WIDTH, HEIGHT = 96, 72
COPY = (2, 7)  # rows (0-based) of the near-duplicate pair
OUTLIER = 10
HARD = 4
AMBER = np.array([255, 176, 0])  # the "missing" kind's colour in viz/label_issues.py


@dataclasses.dataclass(frozen=True)
class Planted:
    db: Path
    ids: list[int]  # image id of each row
    mislabelled: int  # row whose label file lost an object


def _pixel_boxes(label_path: Path) -> tuple[np.ndarray, np.ndarray]:
    labels = read_labels(label_path)
    xywh = labels.boxes.astype(np.float64) * [WIDTH, HEIGHT, WIDTH, HEIGHT]
    xyxy = np.concatenate([xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2], 1)
    return labels.classes.astype(int), xyxy


def _isolated_first_object(boxes: np.ndarray) -> bool:
    """The first object touches no other (so dropping its label leaves it unlabelled)."""
    return len(boxes) >= 2 and box_iou(boxes[:1], boxes[1:]).max() < 0.05


def write_problem_catalog(root: Path) -> Planted:
    """The catalog of the module docstring, under ``root``."""
    data = make_shapes_dataset(root / "shapes", count=40, size=(WIDTH, HEIGHT))
    objects = {path: _pixel_boxes(path) for path in sorted((data / "labels").glob("*.txt"))}
    # the mislabelled image first (row 0 would be its own neighbour's problem otherwise)
    mislabelled_label = next(path for path, (_, b) in objects.items() if _isolated_first_object(b))
    others = [path for path in objects if path != mislabelled_label][: COUNT - 1]
    labels = [*others[:5], mislabelled_label, *others[5:]]
    mislabelled = 5
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(COUNT, 8))
    vectors[COPY[1]] = vectors[COPY[0]] + rng.normal(size=8) * 1e-4
    vectors[OUTLIER] = rng.normal(size=8) * 40
    db = root / "catalog.db"
    with CatalogStore(db) as store:
        images = [data / "images" / f"{label.stem}.png" for label in labels]
        store.register_images(
            [(image, WIDTH, HEIGHT, f"{row:064x}", label) for row, (image, label) in
             enumerate(zip(images, labels, strict=True))]
        )  # fmt: skip
        ids = store.image_ids(images)
        run = store.start_run(MODEL, "yolo", {}, {})
        records = []
        for row, label in enumerate(labels):
            losses = {name: 1.0 + 0.05 * rng.normal() for name in ("box", "cls", "dfl", "seg")}
            losses["cls"] = 3.0 if row == mislabelled else losses["cls"]
            losses["box"] = 6.0 if row == HARD else losses["box"]
            records.append(
                ImageRecord(ids[str(images[row])], vectors[row].astype(np.float32),
                            predictions=_predictions(*objects[label]), losses=losses)
            )  # fmt: skip
        store.write_batch(MODEL, run, records)
        store.finish_run(run, len(records), 0)
    # the label file loses its first object; the model (predictions above) still sees it
    lines = mislabelled_label.read_text().splitlines()
    mislabelled_label.write_text("\n".join(lines[1:]) + "\n")
    return Planted(db, [ids[str(image)] for image in images], mislabelled)


def _predictions(classes: np.ndarray, boxes: np.ndarray) -> list[dict]:
    """A detector that finds every object, half a pixel off, at confidence 0.9."""
    return [
        {"x1": x1 + 0.5, "y1": y1 + 0.5, "x2": x2 + 0.5, "y2": y2 + 0.5, "confidence": 0.9,
         "class_id": int(c), "class_name": SHAPE_NAMES[int(c)]}
        for c, (x1, y1, x2, y2) in zip(classes, boxes, strict=True)
    ]  # fmt: skip


@pytest.fixture
def planted(tmp_path) -> Planted:
    return write_problem_catalog(tmp_path)


@pytest.fixture
def view(planted) -> CatalogView:
    return CatalogView(planted.db)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ---------------------------------------------------------------------- label errors


def test_label_error_candidates_come_in_rank_order(view, planted):
    items, ranked, line = problem_grid(view, "label_errors", MODEL, 5)
    mislabelled = planted.ids[planted.mislabelled]
    assert len(items) == len(ranked) == 5
    assert ranked[0].issue.image_id == mislabelled
    assert items[0][1] == f"#{mislabelled} missing {ranked[0].issue.score:.2f}"
    assert items[0][0].shape == (HEIGHT, WIDTH, 3)  # a thumbnail of the image itself
    scores = [candidate.issue.score for candidate in ranked]
    assert scores == sorted(scores, reverse=True)
    assert line == f"label-error candidates of {MODEL}: 5 (top 5), best first"


def test_a_label_error_shows_its_boxes_and_why(view, planted):
    _, ranked, _ = problem_grid(view, "label_errors", MODEL, 3)
    picture, neighbours, text = problem_detail(view, ranked[0])
    assert max(picture.shape[:2]) == pytest.approx(640, abs=2)
    # the missing object's candidate box is drawn thick in the kind's amber
    amber = np.abs(picture.astype(int) - AMBER).sum(axis=2) < 40
    assert amber.sum() > 200
    missing = ranked[0].issue.boxes[0]
    assert missing.kind == "missing"
    assert (
        f"- **missing** {missing.class_name}, score {missing.score:.2f}, drives up the cls" in text
    )
    assert "Loss component that is off: **cls** = 3" in text
    # the neighbours whose losses disagree: the 5 nearest by embedding, cls near 1
    evidence = ranked[0].evidence
    assert [caption.split()[0] for _, caption in neighbours] == [
        f"#{j}" for j in evidence.neighbours
    ]
    assert all(0.8 < float(caption.split()[-1]) < 1.2 for _, caption in neighbours)
    assert all(f"#{j} " in text for j in evidence.neighbours)


def test_the_grid_reads_labels_and_losses_once(view, planted, monkeypatch):
    """The view reuses the ranking's own images and loss evidence (reading them a
    second time cost about a second a click on CamVid)."""
    import clusterlens.catalog.label_errors as label_errors

    calls = {"load_images": 0, "loss_evidence": 0}

    def counted(name):
        original = getattr(label_errors, name)

        def call(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return call

    for name in calls:
        monkeypatch.setattr(label_errors, name, counted(name))
    _, ranked, _ = problem_grid(view, "label_errors", MODEL, 3)
    assert calls == {"load_images": 1, "loss_evidence": 1}
    first = ranked[0]
    # the neighbours' loss values come with the candidate, from the same evidence
    assert list(first.neighbour_losses) == list(first.evidence.neighbours)
    assert first.image is not None and first.image.image_id == first.issue.image_id


def test_a_clean_image_draws_no_candidate(view, planted):
    _, ranked, _ = problem_grid(view, "label_errors", MODEL, COUNT)
    clean = next(candidate for candidate in ranked if not candidate.issue.boxes)
    picture, _, text = problem_detail(view, clean)
    amber = np.abs(picture.astype(int) - AMBER).sum(axis=2) < 40
    assert amber.sum() == 0 and "no candidate box" in text


# ---------------------------------------------------------------------- the other rankings


def test_near_duplicate_pair_side_by_side_with_its_similarity(view, planted):
    items, ranked, line = problem_grid(view, "near_duplicates", MODEL, 3)
    pair = ranked[0]
    assert (pair.image_a, pair.image_b) == tuple(planted.ids[row] for row in COPY)
    assert items[0][0].shape == (HEIGHT, 2 * WIDTH + 4, 3)  # two thumbnails and a gap
    assert items[0][1] == f"#{pair.image_a} ~ #{pair.image_b} cos {pair.cosine:.3f}"
    assert "no loss distances" in line  # the command's note: loss signal left out
    picture, neighbours, text = problem_detail(view, pair)
    assert picture.shape == (240, 2 * 320 + 4, 3) and neighbours == []
    assert f"cosine similarity {pair.cosine:.4f}" in text and "embedding flags it" in text


def test_near_duplicates_with_the_chosen_signals(view, planted, monkeypatch):
    import clusterlens.catalog.thumbnails as thumbnails

    def unread(path, *args, **kwargs):
        raise AssertionError(f"{path} opened although the pixel signal is off")

    monkeypatch.setattr(thumbnails, "thumbnail", unread)
    _, ranked, line = problem_grid(view, "near_duplicates", MODEL, 3, duplicate_signals="embedding")
    pair = ranked[0]
    assert (pair.image_a, pair.image_b) == tuple(planted.ids[row] for row in COPY)
    assert pair.pixel_distance is None and pair.agree == ("embedding",)
    assert "note" not in line  # the loss signal was left out, not found missing
    *_, message = problem_grid(
        view, "near_duplicates", MODEL, 3, duplicate_signals="embedding,pixel", empty=([], [])
    )
    assert message.startswith("⚠️ problems: unknown near-duplicate signal(s) 'pixel'")


def test_hard_image_and_its_reason(view, planted):
    items, ranked, _ = problem_grid(view, "hard_images", MODEL, 3)
    hard = planted.ids[HARD]
    assert ranked[0].image_id == hard and items[0][1].startswith(f"#{hard} box z +")
    picture, neighbours, text = problem_detail(view, ranked[0])
    assert picture.shape == (360, 480, 3) and neighbours == []
    assert "high box loss 6" in text and "| box | 6 |" in text


def test_outlier_with_its_nearest_images(view, planted):
    _, ranked, _ = problem_grid(view, "outliers", MODEL, 2)
    outlier = ranked[0]
    assert outlier.image_id == planted.ids[OUTLIER]
    picture, neighbours, text = problem_detail(view, outlier)
    assert picture.shape == (360, 480, 3)
    assert [caption.split()[0] for _, caption in neighbours] == [
        f"#{j}" for j, _, _ in outlier.neighbours
    ]
    assert "mean cosine distance" in text


def test_side_by_side_scales_to_the_taller():
    left, right = np.zeros((10, 20, 3), np.uint8), np.zeros((20, 10, 3), np.uint8)
    both = side_by_side(left, right, gap=2)
    assert both.shape == (20, 40 + 2 + 10, 3)
    assert (both[:, 40:42] == 255).all()


# ---------------------------------------------------------------------- read-only, messages


def test_the_catalog_is_never_written(view, planted):
    folder = planted.db.parent
    before = digest(planted.db), planted.db.stat().st_mtime_ns, sorted(os.listdir(folder))
    for section in ("label_errors", "near_duplicates", "hard_images", "outliers"):
        _, ranked, _ = problem_grid(view, section, MODEL, 3)
        problem_detail(view, ranked[0])
    after = digest(planted.db), planted.db.stat().st_mtime_ns, sorted(os.listdir(folder))
    assert after == before


def test_a_catalog_without_labels_shows_the_rankings_message(tiny_catalog):
    view, _ = open_catalog(tiny_catalog)  # predictions and losses, no label files
    items, ranked, message = problem_grid(view, "label_errors", "yolo:tiny.yaml", 5, empty=([], []))
    assert items == ranked == []
    assert message.startswith("⚠️ problems: ") and "has no labelled images" in message
    *_, message = problem_grid(view, "label_errors", "yolo:other.pt", 5, empty=([], []))
    assert "label errors need a YOLO model's predictions" in message


def test_bad_requests_are_messages(view):
    *_, message = problem_grid(view, "typos", MODEL, 5, empty=([], []))
    assert "no ranking 'typos'" in message
    for top in (0, 101):
        *_, message = problem_grid(view, "hard_images", MODEL, top, empty=([], []))
        assert f"top N must be a whole number from 1 to 100, got {top}" in message
    *_, message = problem_grid(view, "outliers", None, 5, empty=([], []))
    assert "holds no YOLO model" in message
    *_, message = problem_grid(None, "outliers", MODEL, 5, empty=([], []))
    assert message.startswith("⚠️ no catalog")


def test_only_recorded_paths_are_read(view, street_file):
    _, ranked, _ = problem_grid(view, "label_errors", MODEL, 1)
    issue = dataclasses.replace(ranked[0].issue, path=str(street_file))
    forged = LabelErrorCandidate(issue, ranked[0].image, ranked[0].evidence)
    *_, message = problem_detail(view, forged, empty=(None, []))
    assert "refused" in message and str(street_file) in message


# ---------------------------------------------------------------------- in the browser

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        pytest.skip("no system browser: apt-get install chromium chromium-driver")
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,2000")
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def served(planted):
    pytest.importorskip("gradio", reason="the app extra is not installed")
    from clusterlens.app.ui import build_app

    app = build_app(catalog=planted.db)
    app.queue()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True)
    try:
        yield app
    finally:
        app.close()


def _button(driver, text: str):
    from selenium.webdriver.common.by import By

    return next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == text)


@pytest.mark.slow
def test_problems_view_in_the_browser(served, browser, planted):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    before = digest(planted.db), planted.db.stat().st_mtime_ns
    wait = WebDriverWait(browser, 120, poll_frequency=0.1)
    browser.get(served.local_url)
    wait.until(lambda d: d.find_elements(By.ID, "allocate"))
    _button(browser, "Catalog").click()
    wait.until(lambda d: _button(d, "Problems").is_displayed())
    _button(browser, "Problems").click()
    # opening the view ranks the label-error candidates of the catalog's YOLO model
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#problem-grid img")) == 10)
    line = browser.find_element(By.ID, "problem-message").text
    assert line.startswith(f"label-error candidates of {MODEL}: 10"), line
    browser.find_elements(By.CSS_SELECTOR, "#problem-grid img")[0].click()
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#problem-image img"))
    wait.until(
        lambda d: "Loss component that is off" in d.find_element(By.ID, "problem-detail").text
    )
    detail = browser.find_element(By.ID, "problem-detail").text
    assert f"#{planted.ids[planted.mislabelled]} " in detail and "missing" in detail
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#problem-near img")) == 5)
    folder = os.environ.get("CLUSTERLENS_SCREENSHOTS")
    if folder:
        browser.save_screenshot(str(Path(folder) / "app-catalog-problems.png"))
    # another ranking: near-duplicate pairs, the planted pair first
    browser.find_element(
        By.XPATH, "//*[@id='problem-section']//label[contains(., 'near-dup')]"
    ).click()
    wait.until(lambda d: "near-duplicate pairs" in d.find_element(By.ID, "problem-message").text)
    first = browser.find_element(By.ID, "problem-grid").text
    a, b = (planted.ids[row] for row in COPY)
    assert f"#{a} ~ #{b}" in first
    # the signals are the user's choice; with none there is nothing to rank, and it says so
    for label in browser.find_elements(By.CSS_SELECTOR, "#problem-signals label"):
        label.click()
    wait.until(
        lambda d: "no near-duplicate signal" in d.find_element(By.ID, "problem-message").text
    )
    assert (digest(planted.db), planted.db.stat().st_mtime_ns) == before
