"""Helpers for tests/test_browser.py: Debian's Chromium driven by playwright-python.

Chromium is Debian's (/usr/bin/chromium, the Makefile's APT_PACKAGES); playwright only
brings its driver and is pointed at that executable: nothing is ever downloaded
(`playwright install` is never run). Each test gets a fresh profile directory.

    chromium         fixture: a browser context on a fresh user-data dir
    Watch            what a page did: responses, requests, console errors, page errors
    sign_in          type a key into the header form, wait until it is accepted
    screenshot       a full-page PNG under test-output/screenshots/
"""
from __future__ import annotations

import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers import ROOT

CHROMIUM = Path(os.environ.get("IMAGEHOST_TEST_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic"]
SCREENSHOTS = ROOT / "test-output" / "screenshots"
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def playwright_driver():
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (Debian: apt-get install chromium; "
                    "`make test` installs it)", pytrace=False)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed (pip install -e '.[test]')", pytrace=False)
    with sync_playwright() as driver:
        yield driver


@pytest.fixture
def chromium(playwright_driver, tmp_path):
    profile = tmp_path / "chromium-profile"
    context = playwright_driver.chromium.launch_persistent_context(
        str(profile), executable_path=str(CHROMIUM), args=ARGS, headless=True, viewport=VIEWPORT,
        accept_downloads=False)
    try:
        yield context
    finally:
        context.close()
        shutil.rmtree(profile, ignore_errors=True)


@dataclass
class Watch:
    """Everything a page did that a test may check afterwards."""

    responses: list = field(default_factory=list)  # (url, status, content-type)
    requests: list = field(default_factory=list)  # (method, url, Authorization header or "")
    console_errors: list = field(default_factory=list)
    page_errors: list = field(default_factory=list)

    def attach(self, page) -> "Watch":
        page.on("response", lambda r: self.responses.append((r.url, r.status, r.headers.get("content-type", ""))))
        page.on("request", lambda r: self.requests.append((r.method, r.url, r.headers.get("authorization", ""))))
        page.on("console", lambda m: self.console_errors.append(f"{m.text} @ {m.location.get('url', '')}")
                if m.type == "error" else None)
        page.on("pageerror", lambda e: self.page_errors.append(str(e)))
        return self

    def assert_clean(self, *, allow=()) -> None:
        """No script errors, and no console errors (CSP violations show up there) but those allowed."""
        assert not self.page_errors, self.page_errors
        unexpected = [m for m in self.console_errors if not any(a in m for a in allow)]
        assert not unexpected, unexpected

    def assert_key_kept(self, key: str, origin: str) -> None:
        """The key never appears in a URL, and goes as a header to this origin only."""
        for method, url, authorization in self.requests:
            assert key not in url, url
            if authorization:
                assert url.startswith(origin + "/"), (method, url)


def open_page(context, url: str):
    page = context.new_page()
    watch = Watch().attach(page)
    page.goto(url)
    return page, watch


def sign_in(page, key: str) -> None:
    page.fill("#key", key)
    page.click("#signin button[type=submit]")
    page.wait_for_selector("#signed-in", state="visible", timeout=10_000)


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
