"""A Live Photo the way a person meets it: the HEIC still and the HEVC MOV dropped together on
the upload page become one item, shown with a "Live" badge in the results, and its page plays
the motion (from the H.264 copy the video worker made) in Chromium."""

from __future__ import annotations

import time

import pytest

from tests.browser.conftest import log_in, screenshot
from tests.browser.test_upload import wait_until_done
from workers.embedding.demo.live_fixtures import live_motion_bytes, live_still_bytes
from workers.embedding.demo.scenes import Scene

pytestmark = pytest.mark.browser

ID = "5D8E1F7A-1C2B-4D3E-9F00-112233445566"
STAR = Scene("star", "red", 1, "large", "middle", "white", "plain")
CROSS = Scene("cross", "green", 1, "large", "middle", "white", "plain")


def test_a_live_photo_is_one_item_whose_page_plays_its_motion(page, running_app, tmp_path):
    still, motion = tmp_path / "IMG_4242.HEIC", tmp_path / "IMG_4242.MOV"
    still.write_bytes(live_still_bytes(STAR, content_identifier=ID, image_format="HEIF"))
    motion.write_bytes(live_motion_bytes([(1.0, STAR), (1.0, CROSS)], content_identifier=ID))
    log_in(page, running_app)
    page.goto("/upload/")
    page.locator("input[name=photos]").set_input_files([str(still), str(motion)])
    wait_until_done(page)
    # Both rows end ready (one photo): the MOV's row follows its still, which may still be
    # embedding when the upload itself is done.
    page.wait_for_function(
        "() => document.querySelectorAll('.upload-item[data-status=ready]').length === 2",
        timeout=120_000,
    )
    assert "the motion of Live Photo IMG_4242.HEIC" in page.locator("#upload-list").inner_text()
    screenshot(page, "50-live-upload")

    page.goto("/?q=a+red+star&strictness=all")
    tile = page.locator("ol.grid > li.tile", has=page.locator("a[title='IMG_4242.HEIC']"))
    assert tile.count() == 1
    assert page.locator("ol.grid a[title='IMG_4242.MOV']").count() == 0  # never its own item
    link = tile.locator("a.tile-link")
    url = link.get_attribute("href")
    deadline = time.monotonic() + 90
    while tile.locator(".live-badge").count() == 0:  # the video worker makes it playable
        assert time.monotonic() < deadline, "the motion never became ready"
        time.sleep(1)
        page.reload()
    screenshot(page, "51-live-result")

    page.goto(url)
    motion_player = page.locator("video#motion")
    assert "/motion/" in motion_player.get_attribute("src")
    page.wait_for_function("() => document.getElementById('motion').readyState >= 2")
    played = page.evaluate(
        """async () => {
          const player = document.getElementById("motion");
          const from = player.currentTime;
          await player.play();
          await new Promise((done) => setTimeout(done, 700));
          player.pause();
          return player.currentTime - from;
        }"""
    )
    assert played > 0.3, f"the motion did not play ({played:.2f} s in 0.7 s)"
    assert page.locator("a", has_text="Download motion (IMG_4242.MOV)").count() == 1
    screenshot(page, "52-live-page")
