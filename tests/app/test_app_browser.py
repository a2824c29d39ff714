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
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

from clusterlens.app.ui import build_app  # noqa: E402

WAIT_S = 120  # the first query with a model loads it (~10 s on 2 shared cores)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served():
    app = build_app()
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
    keep_screenshot(browser, "app_regions.png")


def keep_screenshot(driver, name: str) -> None:
    folder = os.environ.get("CLUSTERLENS_SCREENSHOTS")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        driver.save_screenshot(str(Path(folder) / name))
