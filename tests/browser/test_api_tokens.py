"""API tokens from the web page, used against the running app; the API docs render offline."""

from __future__ import annotations

import pytest
import requests

from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.browser


def test_a_token_made_on_the_page_works_once_shown_and_stops_when_revoked(
    browser, page, running_app
):
    log_in(page, running_app)
    page.get_by_role("link", name="API tokens").click()
    page.get_by_label("Name").fill("browser test")
    page.get_by_role("button", name="Create token").click()
    key = page.locator("#new-token").inner_text()
    screenshot(page, "20-api-token-created")

    me = requests.get(
        f"{running_app.url}/api/me", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert (me.status_code, me.json()["username"]) == (200, "admin")

    page.goto("/account/tokens/")
    assert page.locator("#new-token").count() == 0  # shown once only
    row = page.locator("tr", has_text="browser test")
    assert row.locator("td").nth(3).inner_text() != "never"
    phone = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=running_app.url, is_mobile=True
    )
    try:
        phone_page = phone.new_page()
        log_in(phone_page, running_app)
        phone_page.goto("/account/tokens/")
        screenshot(phone_page, "21-phone-api-tokens")
    finally:
        phone.close()

    row.get_by_role("button", name="Revoke").click()
    assert "Token revoked" in page.locator(".messages").inner_text()
    again = requests.get(
        f"{running_app.url}/api/me", headers={"Authorization": f"Bearer {key}"}, timeout=30
    )
    assert again.status_code == 401


def test_the_api_docs_render_from_local_files_only(page, running_app):
    outside: list[str] = []
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(running_app.url) else outside.append(request.url)
        ),
    )

    page.goto("/api/docs")
    page.get_by_text("MediaSearch API").first.wait_for()
    page.get_by_text("/api/search/image").first.wait_for()
    screenshot(page, "22-api-docs")

    assert outside == []
