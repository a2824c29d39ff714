"""The app in a real browser: Debian's Chromium, headless, driven by selenium.

Skipped, with the reason, where Chromium, chromedriver or selenium is missing
(``apt-get install chromium chromium-driver``; selenium is in the ``app`` extra).
Set CLUSTERLENS_SCREENSHOTS=<folder> to keep the page's screenshot there
(docs/images/app_allocation.png was made so).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path
from urllib.parse import urlparse

import pytest
from PIL import Image

CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM and DRIVER),
        reason="no system browser: apt-get install chromium chromium-driver",
    ),
]
webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
pytest.importorskip("gradio", reason="the app extra is not installed")
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from clusterlens.app.ui import build_app  # noqa: E402

WAIT_S = 120  # the first query with a model loads it (~10 s on 2 shared cores)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tiny_catalog):
    app = build_app(catalog=tiny_catalog)
    app.queue()
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True)
    try:
        yield app
    finally:
        app.close()


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument("--window-size=1400,1900")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})  # network requests
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(DRIVER))
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def photo(tmp_path: Path) -> Path:
    """The bundled sample (cameraman: sky above, ground below) at 256x256."""
    from clusterlens.cli.demo import sample_image

    path = tmp_path / "cameraman.png"
    Image.fromarray(sample_image()).resize((256, 256)).save(path)
    return path


def overlay_source(driver) -> str | None:
    images = driver.find_elements(By.CSS_SELECTOR, "#overlay-a img")
    return images[0].get_attribute("src") if images else None


def picture_source(driver, elem_id: str) -> str | None:
    images = driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")
    return images[0].get_attribute("src") if images else None


def changed(driver, elem_id: str, previous: str | None, wait_s: float = WAIT_S) -> str:
    """Wait until the picture in ``elem_id`` shows something other than ``previous``."""
    WebDriverWait(driver, wait_s, poll_frequency=0.05).until(
        lambda d: picture_source(d, elem_id) not in (None, "", previous)
    )
    return picture_source(driver, elem_id)


def open_tab(driver, name: str, ready_id: str) -> None:
    WebDriverWait(driver, 60).until(lambda d: d.find_elements(By.ID, "allocate"))
    tab = next(b for b in driver.find_elements(By.TAG_NAME, "button") if b.text == name)
    tab.click()
    WebDriverWait(driver, 30).until(lambda d: d.find_element(By.ID, ready_id).is_displayed())


def ask(driver, query: str, previous: str | None) -> str:
    """Type ``query``, press Allocate, and wait for overlay A to show a new picture."""
    box = driver.find_element(By.CSS_SELECTOR, "#query textarea")
    box.clear()
    box.send_keys(query)
    driver.find_element(By.ID, "allocate").click()
    wait = WebDriverWait(driver, WAIT_S)
    wait.until(lambda d: overlay_source(d) not in (None, "", previous))
    return overlay_source(driver)


def requested_hosts(driver) -> set[str]:
    hosts = set()
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")):
                hosts.add(urlparse(url).hostname)
    return hosts


def test_upload_query_and_requery_in_the_browser(served, browser, photo):
    browser.get(served.local_url)
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "allocate"))
    browser.find_element(By.CSS_SELECTOR, "input[type=file]").send_keys(str(photo))
    # the upload selects itself in the image picker
    picker = browser.find_element(By.CSS_SELECTOR, "#image-source input")
    WebDriverWait(browser, 30).until(lambda d: picker.get_attribute("value") == "uploaded file")
    corner = ask(browser, "the top-left corner", None)
    sky = ask(browser, "the sky", corner)  # a different query draws a different overlay
    assert sky != corner
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "model passes" not in page.split("cached")[0]  # the table holds the accounting
    assert "Sky" in page  # the matched class, in the query panel
    assert requested_hosts(browser) <= {"127.0.0.1", "localhost"}  # no outside network
    assert picture_source(browser, "tokens-a")  # the token-budget map came with it
    # a budget change (a click on the slider's track) redraws overlay A alone
    slider = browser.find_element(By.CSS_SELECTOR, "#budget-a input[type=range]")
    ActionChains(browser).move_to_element_with_offset(slider, -slider.size["width"] // 4, 0).click(
    ).perform()  # fmt: skip
    fewer = changed(browser, "overlay-a", sky)
    assert fewer != sky
    table = browser.find_element(By.TAG_NAME, "body").text
    assert "patches_kept" in table
    # a click on overlay B (foveated) sets the gaze and redraws B around it
    before_b = picture_source(browser, "overlay-b")
    overlay_b = browser.find_element(By.CSS_SELECTOR, "#overlay-b img")
    ActionChains(browser).move_to_element_with_offset(
        overlay_b, -overlay_b.size["width"] // 3, -overlay_b.size["height"] // 3
    ).click().perform()
    gaze = browser.find_element(By.CSS_SELECTOR, "#gaze textarea, #gaze input")
    WebDriverWait(browser, 30).until(lambda d: gaze.get_attribute("value"))
    x, y = (float(part) for part in gaze.get_attribute("value").split(","))
    assert 0.1 < x < 0.25 and 0.1 < y < 0.25  # a third of the way left and up of centre
    changed(browser, "overlay-b", before_b)
    # a token budget makes budgets differ by score: the token-budget map (homunculus)
    # then draws the best patches largest
    before_map = picture_source(browser, "tokens-a")
    tokens = browser.find_element(By.CSS_SELECTOR, "#tokens input[type=range]")
    ActionChains(browser).move_to_element_with_offset(
        tokens, tokens.size["width"] // 3, 0
    ).click().perform()  # about 13,600 tokens for A's 232 patches: 64-400 tokens each, by score
    changed(browser, "tokens-a", before_map)
    keep_screenshot(browser, "app_allocation.png")


def test_regions_tab_in_the_browser(served, browser):
    browser.get(served.local_url)  # the sample image, chosen by default
    WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "allocate"))
    tab = next(b for b in browser.find_elements(By.TAG_NAME, "button") if b.text == "Regions")
    tab.click()
    WebDriverWait(browser, 30).until(lambda d: d.find_element(By.ID, "cluster").is_displayed())
    browser.find_element(By.ID, "cluster").click()
    WebDriverWait(browser, WAIT_S).until(
        lambda d: d.find_elements(By.CSS_SELECTOR, "#regions-overlay img")
    )
    message = browser.find_element(By.ID, "regions-message").text
    assert message.endswith("regions (fast)") and int(message.split()[0]) > 1
    # a coarse level: the slider's track clicked right of centre (about 40 groups)
    before = picture_source(browser, "regions-overlay")
    groups = browser.find_element(By.CSS_SELECTOR, "#groups input[type=range]")
    ActionChains(browser).move_to_element_with_offset(groups, groups.size["width"] // 8, 0).click(
    ).perform()  # fmt: skip
    browser.find_element(By.ID, "cluster").click()
    changed(browser, "regions-overlay", before)
    message = browser.find_element(By.ID, "regions-message").text
    assert "coarse groups (cyan)" in message, message
    keep_screenshot(browser, "app_regions.png")


def keep_screenshot(driver, name: str) -> None:
    folder = os.environ.get("CLUSTERLENS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))


def test_segmentation_tab_in_the_browser(served, browser):
    browser.get(served.local_url)  # the sample image
    open_tab(browser, "Segmentation", "segment")
    box = browser.find_element(By.CSS_SELECTOR, "#classes textarea")
    box.clear()
    box.send_keys("sky, person, grass")
    browser.find_element(By.ID, "segment").click()
    labels = changed(browser, "segment-labels", None)
    for elem_id in ("segment-prompts", "segment-before", "segment-after"):
        assert picture_source(browser, elem_id)
    legend = browser.find_element(By.ID, "segment-legend").text
    assert all(name in legend for name in ("sky", "person", "grass")) and "%" in legend
    assert "prompts" in browser.find_element(By.ID, "segment-message").text
    keep_screenshot(browser, "app_segmentation.png")
    # refinement off: the label map is drawn again
    toggle = next(
        label
        for label in browser.find_elements(By.TAG_NAME, "label")
        if "coarse-to-fine" in label.text
    )
    toggle.click()
    browser.find_element(By.ID, "segment").click()
    changed(browser, "segment-labels", labels)
    assert "refinement off" in browser.find_element(By.ID, "segment-message").text


def thumbnails(driver, elem_id: str) -> list:
    return driver.find_elements(By.CSS_SELECTOR, f"#{elem_id} img")


def test_catalog_tab_in_the_browser(served, browser):
    browser.set_window_size(1400, 2300)  # the screenshot shows the neighbours too
    browser.get(served.local_url)
    open_tab(browser, "Catalog", "sorted-grid")
    wait = WebDriverWait(browser, WAIT_S, poll_frequency=0.05)
    # on opening: the cluster sizes, the first cluster's images, images sorted by loss
    wait.until(lambda d: len(thumbnails(d, "sorted-grid")) == 6)
    wait.until(lambda d: len(thumbnails(d, "cluster-grid")) == 4)
    sizes = browser.find_element(By.ID, "cluster-sizes").text
    assert "4" in sizes and "2" in sizes
    thumbnails(browser, "sorted-grid")[0].click()  # the highest total loss: image 6
    wait.until(lambda d: picture_source(d, "catalog-image"))
    wait.until(lambda d: len(thumbnails(d, "near-out")) == 5 and len(thumbnails(d, "near-in")))
    detail = browser.find_element(By.ID, "catalog-detail").text
    assert detail.startswith("#6 shape_005.png") and "1 predictions" in detail
    assert "#5 d=" in browser.find_element(By.ID, "near-out").text  # dist[6][5] is least
    # lowest first: the sorted grid starts with image 1 (the lowest total loss)
    first = thumbnails(browser, "sorted-grid")[0].get_attribute("src")
    browser.find_element(By.CSS_SELECTOR, "#descending input").click()
    wait.until(lambda d: thumbnails(d, "sorted-grid")[0].get_attribute("src") != first)
    assert "#1 total_loss=0.9" in browser.find_element(By.ID, "sorted-grid").text
    keep_screenshot(browser, "app_catalog.png")
    assert requested_hosts(browser) <= {"127.0.0.1", "localhost"}


def accounting_text(driver) -> str:
    return driver.find_element(By.ID, "accounting").text


def test_two_browser_sessions_do_not_share_state(served, browser):
    """Two pages open at once are two Gradio sessions: each decodes the image for
    itself (decode_ms in its table) even after the other one has."""
    tabs = []
    for _ in range(2):
        if tabs:
            browser.switch_to.new_window("tab")
        browser.get(served.local_url)  # the sample image in both
        WebDriverWait(browser, 60).until(lambda d: d.find_elements(By.ID, "allocate"))
        tabs.append(browser.current_window_handle)
    for tab in tabs:  # the first page twice, then the second page
        browser.switch_to.window(tab)
        for attempt in range(2 if tab == tabs[0] else 1):
            previous = picture_source(browser, "overlay-a")
            ask(browser, "the top-left corner" if attempt == 0 else "the sky", previous)
            WebDriverWait(browser, 30).until(lambda d: "cached" in accounting_text(d))
            table = accounting_text(browser)
            first_call = attempt == 0
            assert ("decode_ms" in table) == first_call, table  # decoded once per session
