"""Debian's chromium, headless, driven by selenium through Debian's chromedriver (nothing downloaded)."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from peers import PeerUnavailable, ensure_debs

__all__ = ["Browser", "chromium"]

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"


class Browser:
    """A thin wrapper: open pages, fill forms, keep screenshots in ``shots``."""

    def __init__(self, driver: Any, base: str, shots: Path) -> None:
        self.d = driver
        self.base = base
        self.shots = shots
        shots.mkdir(parents=True, exist_ok=True)

    def open(self, path: str) -> None:
        self.d.get(self.base + path)

    def shot(self, name: str) -> Path:
        """A screenshot of the whole page (beyond the viewport), kept as ``<shots>/<name>.png``."""
        path = self.shots / f"{name}.png"
        data = self.d.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True})
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def text(self) -> str:
        return str(self.d.find_element("tag name", "body").text)

    def source(self) -> str:
        return str(self.d.page_source)

    def navigates(self, action: Any, element: Any) -> None:
        """Run ``action`` (a click, a submit) and wait until ``element``'s page has been replaced."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.support import expected_conditions as ec
        from selenium.webdriver.support.ui import WebDriverWait

        action()
        wait = WebDriverWait(self.d, 30, ignored_exceptions=(WebDriverException,))
        wait.until(ec.staleness_of(element))
        wait.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def click(self, by: str, value: str) -> None:
        el = self.d.find_element(by, value)
        self.navigates(el.click, el)

    def submit_text(self, name: str, text: str) -> None:
        el = self.d.find_element("name", name)
        self.navigates(lambda: el.send_keys(text + "\n"), el)

    def sign_in(self, user: str, password: str) -> None:
        self.open("/ui/login")
        self.d.find_element("name", "username").send_keys(user)
        self.d.find_element("name", "password").send_keys(password)
        self.click("css selector", "form.login button")

    def sign_out(self) -> None:
        self.click("css selector", "header form button")

    def console_errors(self) -> list[str]:
        return [e["message"] for e in self.d.get_log("browser") if e.get("level") == "SEVERE"]


@contextmanager
def chromium(base: str, shots: Path, width: int = 1280, height: int = 900) -> Iterator[Browser]:
    try:
        ensure_debs("chromium", "chromium-driver")
    except PeerUnavailable as e:  # pragma: no cover - depends on the machine
        import pytest

        pytest.skip(str(e))
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    assert shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                f"--window-size={width},{height}", "--no-first-run", "--disable-extensions"):
        opts.add_argument(arg)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
    driver.set_page_load_timeout(60)
    if width < 500:  # below chromium's smallest window: emulate the phone's screen instead
        driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                               {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": True})
    try:
        yield Browser(driver, base, shots)
    finally:
        driver.quit()
