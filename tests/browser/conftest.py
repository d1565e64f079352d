"""The app started the README way (``./dev up``, its own data folder and port: tests/devup.py)
and a headless Chromium driven by Playwright. Screenshots go to ``test-artifacts/screenshots/``.

Chromium comes from the system (Debian ``chromium``); ``.ci/run`` installs it. Without it these
tests skip, unless ``MEDIASEARCH_REQUIRE_BROWSER=1`` (set by CI) makes that a failure.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tests.devup import RunningApp, dev_up

ARTIFACTS = REPO_ROOT / "test-artifacts" / "screenshots"


@pytest.fixture(scope="session")
def running_app(tmp_path_factory) -> Iterator[RunningApp]:
    # Every test logs in as admin; the default (10 per account in 5 minutes) would refuse the
    # later ones. The other limits stay as shipped.
    # OCR on, as shipped (the test process itself runs with it off).
    with dev_up(
        tmp_path_factory.mktemp("app-var"),
        MEDIASEARCH_RATE_LIMIT_LOGIN="1000,1000/300",
        MEDIASEARCH_OCR_ENABLED="1",
    ) as app:
        yield app


@pytest.fixture(scope="module")
def browser():
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        message = "Chromium is not installed (Debian: apt-get install chromium)"
        if os.environ.get("MEDIASEARCH_REQUIRE_BROWSER") == "1":
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, running_app):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, base_url=running_app.url)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert errors == [], f"JavaScript errors: {errors}"


def screenshot(page, name: str) -> Path:
    """Save a full-page screenshot, and check nothing sticks out sideways (a broken layout)."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    width = page.viewport_size["width"]
    overflow = page.evaluate("document.documentElement.scrollWidth") - width
    assert overflow <= 0, f"{name}: the page is {overflow}px wider than the window"
    return path


def log_in(page, running_app: RunningApp, username: str = "admin", password: str = "") -> None:
    page.goto("/accounts/login/")
    page.get_by_label("User name").fill(username)
    page.get_by_label("Password").fill(password or running_app.admin_password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(running_app.url + "/")
