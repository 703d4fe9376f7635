"""The explorer as a person uses it: a real headless Chromium (the system's package, driven by
Selenium through the system's chromedriver) opens the page of a trained StyleGAN run, picks a
sample, moves the truncation slider and runs an edit; the images must change and the figures
appear. Without Chromium the test is skipped with its reason, except on CI (``$CI`` or
``$GANKIT_REQUIRE_BROWSER`` set), where ``.ci/run`` installs it and a missing browser fails."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

import gankit
from gankit.api_explore import session as explore_session
from gankit.explore import start
from test_style_control import STYLE

CHROMIUM = os.environ.get("GANKIT_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("GANKIT_CHROMEDRIVER", "/usr/bin/chromedriver")
FLAGS = [  # a closed network refuses Chromium's background connections: switch them off
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1280,1400",
]


def _browser_or_skip():
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).is_file()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if missing:
        reason = f"no headless browser: {', '.join(missing)} missing (apt-get install chromium "
        reason += "chromium-driver; pip install selenium)"
        if os.environ.get("CI") or os.environ.get("GANKIT_REQUIRE_BROWSER"):  # .ci/run sets it
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)


@pytest.fixture
def browser():
    _browser_or_skip()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="gankit-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in [*FLAGS, f"--user-data-dir={profile}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


class Linear(torch.nn.Module):
    """A fixed random linear classifier of 16 px images."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = torch.nn.Linear(16 * 16, 10)

    def forward(self, x):
        return self.fc(x.flatten(1)) * 4.0


def test_pick_truncate_and_edit_in_a_real_browser(browser, tmp_path, data_root):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support.ui import Select, WebDriverWait

    run = gankit.train(
        "mnist-stylegan",
        [
            f"out={tmp_path}",
            "name=s",
            "log.quiet=true",
            f"data.root={data_root}",
            "data.download=false",
            *STYLE,  # the tiny StyleGAN of the style-control tests
            "train.steps=2",
            "train.batch_size=8",
            "log.n_samples=16",
            "log.every=1",
        ],  # fmt: skip
    ).dir
    s = explore_session(run)
    s.loaders.classifier = Linear
    server = start(s, port=0)
    wait = WebDriverWait(browser, 60)
    try:
        browser.get(server.url)
        cells = lambda: browser.find_elements(By.CSS_SELECTOR, "#grid img")  # noqa: E731
        wait.until(lambda d: len(cells()) == 64)
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#charts svg"))  # the curves
        assert "gankit explore: s" in browser.title
        first = cells()[5].get_attribute("src")
        cells()[5].click()  # pick A
        assert browser.find_element(By.ID, "pick-a").get_attribute("src") == first
        assert "a" in cells()[5].get_attribute("class").split()
        slider = browser.find_element(By.ID, "psi")  # keyboard moves it as a hand would
        slider.send_keys(Keys.HOME)  # psi 0: every sample becomes the average image
        wait.until(lambda d: d.find_element(By.ID, "psi-value").text == "0.00")
        wait.until(lambda d: cells()[5].get_attribute("src") != first)
        flat = {c.get_attribute("src") for c in cells()}
        assert len(flat) == 1  # psi 0 in W
        Select(browser.find_element(By.ID, "edit-target")).select_by_value("1")
        browser.find_element(By.ID, "edit-steps").clear()
        browser.find_element(By.ID, "edit-steps").send_keys("20")
        browser.find_element(By.ID, "edit-run").click()
        wait.until(lambda d: "p(target) after" in d.find_element(By.ID, "edit-figures").text)
        before = browser.find_element(By.ID, "edit-before").get_attribute("src")
        after = browser.find_element(By.ID, "edit-after").get_attribute("src")
        assert before.startswith("data:image/png") and after.startswith("data:image/png")
        assert before == first  # the edit starts from the pick, untruncated
        assert after != before
        figures = browser.find_element(By.ID, "edit-figures").text
        assert "success" in figures and "entanglement" in figures
        # a bad request shows its one sentence on the page
        browser.find_element(By.ID, "interp-steps").clear()
        browser.find_element(By.ID, "interp-steps").send_keys("500")
        cells()[9].click()  # pick B
        browser.find_element(By.ID, "interp-run").click()
        wait.until(lambda d: d.find_element(By.ID, "error").is_displayed())
        assert "steps must be in 2..64, got 500" in browser.find_element(By.ID, "error").text
    finally:
        server.close()
