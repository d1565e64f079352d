"""A video the way a person meets it: uploaded on the upload page, found by describing a moment,
opened at that moment, played and seeked in Chromium (through range requests), from the copy
the worker made because Chromium cannot play the HEVC original."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, screenshot
from tests.browser.test_upload import wait_until_done
from workers.embedding.demo.scenes import Scene
from workers.embedding.demo.videos import render_video

pytestmark = pytest.mark.browser


def scene(shape: str, colour: str, background: str = "white") -> Scene:
    return Scene(shape=shape, colour=colour, count=1, size="large", position="middle",
                 background=background, pattern="plain", layout_seed=0)  # fmt: skip


def test_a_video_is_found_at_its_moment_and_plays_and_seeks(page, running_app, tmp_path):
    path = tmp_path / "phone-clip.mov"
    render_video(
        path,
        [
            (4.0, scene("circle", "blue")),
            (4.0, scene("star", "red")),
            (4.0, scene("square", "green", "yellow")),
        ],
        codec="hevc",
        container="mov",
        audio=True,
    )
    ranges = []
    page.on(
        "response",
        lambda response: ranges.append(response.status) if "/playable/" in response.url else None,
    )
    log_in(page, running_app)
    page.goto("/upload/")
    page.locator("input[name=photos]").set_input_files([str(path)])
    wait_until_done(page)
    assert page.locator(".upload-item[data-status=ready]").count() == 1

    page.goto("/?q=a+red+star&strictness=all&show=videos")
    assert page.locator("select[name=show]").input_value() == "videos"  # the filter, as chosen
    tile = page.locator("ol.grid > li.tile").first
    moment = tile.locator(".moment").inner_text()
    assert moment.startswith("▶ 0:0")
    seconds = int(moment.rsplit(":", 1)[1])
    assert 4 <= seconds <= 6, moment
    screenshot(page, "40-video-result")
    tile.locator("a.tile-link").click()

    player = page.locator("video#player")
    assert "/playable/" in player.get_attribute("src")
    page.wait_for_function("() => document.getElementById('player').readyState >= 2")
    start = page.evaluate("() => document.getElementById('player').currentTime")
    assert abs(start - seconds) < 1.5, start  # opened at the moment
    assert page.locator(".moments li").count() >= 1
    screenshot(page, "41-video-page")

    played = page.evaluate(
        """async () => {
          const player = document.getElementById("player");
          player.muted = true;
          const from = player.currentTime;
          await player.play();
          await new Promise((done) => setTimeout(done, 1500));
          player.pause();
          return player.currentTime - from;
        }"""
    )
    assert played > 0.5, f"the video did not play ({played:.2f} s in 1.5 s)"
    seeked = page.evaluate(
        """async () => {
          const player = document.getElementById("player");
          const done = new Promise((resolve) => player.addEventListener("seeked", resolve,
            { once: true }));
          player.currentTime = 10;
          await done;
          return player.currentTime;
        }"""
    )
    assert abs(seeked - 10) < 0.5
    assert 206 in ranges, f"the player's requests: {ranges}"
