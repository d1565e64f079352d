"""A user's journey through the web UI in headless Chromium, against ``./dev up``."""

from __future__ import annotations

import random
import re

import pytest

from tests.browser.conftest import log_in, screenshot
from workers.embedding.demo.scenes import Scene, render

pytestmark = pytest.mark.browser

SCENES = {
    "red-circles.jpg": Scene("circle", "red", 2, "large", None, "blue", "plain", 1),
    "green-square.jpg": Scene("square", "green", 1, "large", "middle", "white", "plain", 2),
    "yellow-stars.jpg": Scene("star", "yellow", 3, "large", None, "black", "plain", 3),
    "white-cross.jpg": Scene("cross", "white", 1, "large", "left", "purple", "striped", 4),
}


@pytest.fixture(scope="module")
def scene_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("scenes")
    for name, scene in SCENES.items():
        render(scene).save(folder / name, quality=92)
    query = folder / "query.png"
    render(Scene("circle", "red", 2, "large", None, "blue", "plain", 99)).save(query)
    return folder


def result_names(page) -> list[str]:
    return page.locator("ol.grid li.tile > a").evaluate_all("els => els.map(e => e.title)")


def test_upload_wait_search_find_similar_and_open_a_photo(page, running_app, scene_files):
    log_in(page, running_app)
    screenshot(page, "01-search-empty")

    page.get_by_role("link", name="Upload").click()
    # Choosing the files sends them; the page follows each until it is processed.
    page.locator("input[name=photos]").set_input_files([str(scene_files / n) for n in SCENES])
    page.locator("#upload-summary[data-done=true]").wait_for(timeout=120_000)
    assert page.locator(".upload-item .status-ready").count() == len(SCENES)
    screenshot(page, "02-upload")
    page.get_by_role("link", name="See them on My photos").click()
    listed = page.locator("table.photos").inner_text()
    assert all(name in listed for name in SCENES)
    screenshot(page, "03-photos-ready")

    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_label("Describe a photo").fill("two red circles on a blue background")
    page.get_by_role("button", name="Search", exact=True).click()
    assert result_names(page)[0] == "red-circles.jpg"
    screenshot(page, "04-text-search")

    page.locator("ol.grid li.tile").first.get_by_role("link", name="Similar").click()
    page.wait_for_url(re.compile(r"similar="))
    assert "red-circles.jpg" in page.locator(".query-photo").inner_text()
    assert "red-circles.jpg" not in result_names(page)
    screenshot(page, "05-find-similar")

    page.goto("/")
    page.locator("#id_image").set_input_files(str(scene_files / "query.png"))
    page.get_by_role("button", name="Search by image").click()
    assert result_names(page)[0] == "red-circles.jpg"
    screenshot(page, "06-image-search")

    page.locator("ol.grid li.tile > a").first.click()
    assert page.locator("h1").inner_text() == "red-circles.jpg"
    assert page.get_by_role("link", name="Download original").is_visible()
    screenshot(page, "07-photo-page")


def test_no_good_match_says_so_and_offers_the_closest(page, running_app):
    log_in(page, running_app)
    page.goto("/?q=" + "three+black+triangles+on+a+dotted+orange+background&strictness=strict")
    no_match = page.locator(".no-match")
    assert "No good match" in no_match.inner_text()
    screenshot(page, "08-no-good-match")
    no_match.get_by_role("link", name="Show the closest photos anyway").click()
    page.wait_for_url("**strictness=all")  # the results are read from the new page
    assert len(result_names(page)) > 0


def test_albums_are_made_from_photo_pages(page, running_app):
    log_in(page, running_app)
    page.get_by_role("link", name="Albums").click()
    name = f"Shapes {random.randrange(10**6)}"
    page.get_by_label("New album").fill(name)
    page.get_by_role("button", name="Create").click()
    assert page.locator("h1").inner_text() == name
    page.goto("/?q=green+square&strictness=all")
    page.locator("ol.grid li.tile > a").first.click()
    page.get_by_label("Add to album").select_option(label=name)
    page.get_by_role("button", name="Add").click()
    assert name in page.locator(".meta").inner_text()
    page.get_by_role("link", name=name).click()
    assert page.locator("ol.grid li").count() == 1
    screenshot(page, "09-album")


def test_pages_fit_a_phone_screen(browser, running_app):
    context = browser.new_context(
        viewport={"width": 390, "height": 844}, base_url=running_app.url, is_mobile=True
    )
    page = context.new_page()
    try:
        log_in(page, running_app)
        for name, url in [
            ("10-phone-search", "/?q=yellow+stars&strictness=all"),
            ("11-phone-photos", "/photos/"),
            ("12-phone-albums", "/albums/"),
            ("13-phone-dashboard", "/dashboard/"),
        ]:
            page.goto(url)
            screenshot(page, name)
        page.goto("/?q=yellow+stars&strictness=all")
        page.locator("ol.grid li.tile > a").first.click()
        screenshot(page, "14-phone-photo-page")
    finally:
        context.close()


def test_staff_dashboard(page, running_app):
    log_in(page, running_app)
    page.get_by_role("link", name="Dashboard").click()
    assert page.locator("h1").first.inner_text() == "Pipeline"
    screenshot(page, "15-dashboard")


def test_dashboard_retries_a_failure_and_switches_the_model_and_back(
    page, running_app, tmp_path, scene_files
):
    log_in(page, running_app)
    broken = tmp_path / "broken.jpg"
    render(SCENES["green-square.jpg"]).save(broken, quality=90)
    broken.write_bytes(broken.read_bytes()[:2000])  # a whole header, then half the data
    page.goto("/upload/")
    page.locator("input[name=photos]").set_input_files(
        [str(broken), str(scene_files / "red-circles.jpg")]
    )
    page.locator("#upload-summary[data-done=true]").wait_for(timeout=120_000)
    page.goto("/photos/")
    page.locator("tr", has_text="broken.jpg").locator(".status-failed").wait_for(timeout=60_000)

    page.get_by_role("link", name="Dashboard").click()
    row = page.locator("tr", has_text="broken.jpg")
    assert "damaged or incomplete" in row.inner_text()
    row.get_by_role("button", name="Retry", exact=True).click()
    assert "1 photo(s) queued again" in page.locator(".messages").inner_text()
    screenshot(page, "16-dashboard-after-retry")

    for name, pretrained, model_id in [
        ("MediaSearch-Demo", "", "MediaSearch-Demo/random-0"),
        ("MediaSearch-Demo", "demo", "MediaSearch-Demo/mediasearch-demo"),
    ]:
        page.get_by_label("open_clip model").fill(name)
        page.get_by_label("Weights").fill(pretrained)
        page.get_by_role("button", name="Switch model").click()
        assert "Loading the new model" in page.locator(".messages").inner_text()
        screenshot(page, f"17-dashboard-switching-to-{pretrained or 'random'}")
        for _ in range(120):
            page.goto("/dashboard/")
            active = page.locator(".model-card p").first.inner_text()
            if model_id in active and page.locator(".switch").count() == 0:
                break
            page.wait_for_timeout(1000)
        assert model_id in active, active
    screenshot(page, "18-dashboard-after-switching-back")
    # Back on the demo weights, with every vector recomputed: search finds the scene again.
    page.goto("/?q=two+red+circles+on+a+blue+background")
    assert result_names(page)[0] == "red-circles.jpg"
