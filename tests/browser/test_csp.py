"""Every page passes the Content-Security-Policy: Chromium reports no violation on any of them."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in

pytestmark = pytest.mark.browser

PAGES = [
    "/",
    "/?q=a+red+circle&strictness=all",
    "/upload/",
    "/photos/",
    "/albums/",
    "/account/tokens/",
    "/duplicates/",
    "/dashboard/",
    "/admin/",
    "/admin/search/photo/",
    "/admin/auth/user/",
    "/api/docs",
]


def test_no_page_violates_the_content_security_policy(page, running_app):
    violations: list[str] = []
    page.on(
        "console",
        lambda message: (
            violations.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text
            else None
        ),
    )
    page.goto("/accounts/login/")
    log_in(page, running_app)
    visited = ["/accounts/login/"]
    for path in PAGES:
        response = page.goto(path)
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"], path
        page.wait_for_load_state("networkidle")
        visited.append(path)

    page.goto("/albums/")
    page.get_by_label("New album").fill("CSP check")
    page.get_by_role("button", name="Create").click()
    page.wait_for_load_state("networkidle")  # the new album's page
    # The delete button asks first (a static script now, not an inline handler).
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.get_by_role("button", name="Delete album").click()
    assert page.get_by_role("heading", name="CSP check").count() == 1

    assert violations == [], "\n".join(violations)
    assert len(visited) == len(PAGES) + 1
