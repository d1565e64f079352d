"""Text in photos in the browser: a word seen only inside a picture finds it first, the word
shown on its tile and its box highlighted on the photo's page."""

from __future__ import annotations

import random
import time

import pytest

from search.management.commands.load_demo_gallery import _text_photos
from tests.browser.conftest import log_in, screenshot

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def text_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("text-photos")
    paths = []
    # The demo gallery's first three text photos: HOTEL MIRAMAR, TESCO receipt, Pastelaria
    # Lisboa (file names demo-text-00.jpg…, which do not give the words away).
    for upload in _text_photos(3, random.Random(8)):
        path = folder / upload.name
        path.write_bytes(upload.read())
        paths.append(path)
    return paths


def test_a_word_inside_a_picture_finds_it_first_highlighted(page, running_app, text_files):
    log_in(page, running_app)
    page.get_by_role("link", name="Upload").click()
    page.locator("input[name=photos]").set_input_files([str(path) for path in text_files])
    page.locator("#upload-summary[data-done=true]").wait_for(timeout=120_000)

    # The text is read on the OCR queue after the photo is ready: search until it is.
    deadline = time.monotonic() + 180
    while True:
        page.goto("/?q=miramar")
        tiles = page.locator("ol.grid li.tile")
        if tiles.count() and tiles.first.locator(".matched-text").count():
            break
        assert time.monotonic() < deadline, "the text was not read within 3 minutes"
        time.sleep(2)
    first = tiles.first
    assert first.locator("a.tile-link").get_attribute("title") == "demo-text-00.jpg"
    assert first.locator(".matched-text mark").inner_text() == "miramar"
    screenshot(page, "text-01-search-by-a-word-in-the-picture")

    first.locator("a.tile-link").click()
    page.wait_for_url("**/photos/**")
    assert page.locator("h1").inner_text() == "demo-text-00.jpg"
    assert page.locator(".photo-text mark").inner_text() == "MIRAMAR"
    highlighted = page.locator("svg.text-boxes rect.text-box.matched")
    assert highlighted.count() == 1
    box = highlighted.bounding_box()
    picture = page.locator(".text-overlay img").bounding_box()
    assert box is not None and picture is not None
    # The box lies on the picture, and is word-sized, not the whole picture.
    assert picture["x"] <= box["x"] and box["x"] + box["width"] <= picture["x"] + picture["width"]
    assert 0 < box["width"] < picture["width"] / 2
    screenshot(page, "text-02-photo-page-highlight")

    # text: searches only the text; a quoted phrase must be exact.
    page.goto('/?q=text:+"tesco+receipt"')
    assert page.locator("ol.grid li.tile").count() == 1
    page.goto('/?q=text:+"receipt+tesco"')
    assert page.locator("ol.grid li.tile").count() == 0
