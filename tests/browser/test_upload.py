"""The upload page in headless Chromium: files and folders dropped on it, per-file progress and
live status; the file chooser; the plain form without scripts; keyboard use of the results."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest

from tests.browser.conftest import log_in, screenshot
from workers.embedding.demo.scenes import Scene, render

pytestmark = pytest.mark.browser

NOT_AN_IMAGE = (
    "not a supported image or video (images: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, "
    "AVIF, JPEG 2000, Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
    "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2; "
    "videos: MP4/MOV, MKV, WebM, AVI)"
)
TOO_BIG = "the file is larger than the 100 MB limit"  # the app's default limit
DAMAGED = "the image data is damaged or incomplete"

# Scenes no other browser test uploads (the app, and so the library, is shared by them all).
DROPPED = {
    "orange-triangles.jpg": Scene("triangle", "orange", 3, "large", None, "grey", "plain", 11),
    "pink-square.jpg": Scene("square", "pink", 1, "large", "right", "black", "dotted", 12),
    "blue-cross.jpg": Scene("cross", "blue", 1, "large", "top", "yellow", "plain", 13),
    "green-circles.jpg": Scene("circle", "green", 2, "small", None, "white", "striped", 14),
}
FOLDER = {
    "a-purple-star.jpg": Scene("star", "purple", 1, "large", "middle", "white", "plain", 21),
    "b-black-squares.png": Scene("square", "black", 2, "large", None, "orange", "plain", 22),
    "c-white-circle.jpg": Scene("circle", "white", 1, "large", "left", "blue", "dotted", 23),
}
SUBFOLDER = {"d-red-cross.jpg": Scene("cross", "red", 1, "large", "bottom", "grey", "plain", 24)}
CHOSEN = {
    "yellow-square.jpg": Scene("square", "yellow", 1, "large", "middle", "purple", "plain", 31),
    "grey-triangle.jpg": Scene("triangle", "grey", 1, "large", "left", "pink", "plain", 32),
    "white-stars.jpg": Scene("star", "white", 2, "large", None, "green", "plain", 33),
    "blue-circle.jpg": Scene("circle", "blue", 1, "large", "right", "orange", "plain", 34),
    "red-square.jpg": Scene("square", "red", 1, "small", "top", "white", "striped", 35),
}


def image_bytes(scene: Scene, name: str) -> bytes:
    from io import BytesIO

    buffer = BytesIO()
    # Large and detailed enough that a throttled upload takes a moment to watch.
    image = render(scene, (640, 480))
    if name.endswith(".png"):
        image.save(buffer, format="PNG")
    else:
        image.save(buffer, format="JPEG", quality=97, subsampling=0)
    return buffer.getvalue()


def payload(name: str, data: bytes | None = None, *, size: int = 0, type_: str = "") -> dict:
    """A file for the page to build: its bytes, or only a size (zeros, never sent)."""
    if not type_:
        type_ = {"jpg": "image/jpeg", "png": "image/png"}.get(name.rsplit(".", 1)[-1], "")
    encoded = base64.b64encode(data).decode() if data is not None else None
    return {"name": name, "type": type_, "b64": encoded, "size": size}


# A real DataTransfer holding real File objects, as a drop from the desktop hands the page.
MAKE_TRANSFER = """(files) => {
  const transfer = new DataTransfer();
  for (const { name, type, b64, size } of files) {
    const bytes = b64 === null ? new Uint8Array(size)
      : Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], name, { type }));
  }
  return transfer;
}"""

# A dropped folder. Headless Chromium cannot drag a real folder from the desktop, so the entries
# are stand-ins with the interface of FileSystemDirectoryEntry/FileSystemFileEntry, their reader
# handing out two entries per call as Chromium hands out a hundred.
DROP_FOLDER = """([folder, files]) => {
  const made = new Map(files.map(({ name, type, b64 }) =>
    [name, new File([Uint8Array.from(atob(b64), (c) => c.charCodeAt(0))], name, { type })]));
  function entry(node, parent) {
    const fullPath = parent + "/" + node.name;
    if (!node.children) {
      const file = made.get(node.name);
      return { isFile: true, isDirectory: false, name: node.name, fullPath,
               file: (ok) => setTimeout(() => ok(file)) };
    }
    const children = node.children.map((child) => entry(child, fullPath));
    return { isFile: false, isDirectory: true, name: node.name, fullPath,
             createReader() {
               let next = 0;
               return { readEntries(ok) {
                 const batch = children.slice(next, next + 2);
                 next += 2;
                 setTimeout(() => ok(batch));
               } };
             } };
  }
  const root = entry(folder, "");
  const event = new Event("drop", { bubbles: true, cancelable: true });
  Object.defineProperty(event, "dataTransfer", { value: {
    types: ["Files"], files: [],
    items: [{ kind: "file", webkitGetAsEntry: () => root, getAsFile: () => null }],
  } });
  document.getElementById("dropzone").dispatchEvent(event);
}"""

ROWS = """rows => rows.map(row => ({
  name: row.querySelector(".upload-name").textContent,
  status: row.dataset.status,
  label: row.querySelector(".status").textContent,
  note: row.querySelector(".upload-note").textContent,
  link: row.querySelector("a.upload-name")?.getAttribute("href") || null,
  thumbnail: !!row.querySelector(".upload-thumb img"),
}))"""


def drop(page, files: list[dict]) -> None:
    transfer = page.evaluate_handle(MAKE_TRANSFER, files)
    # Checked in the same turn of the page's event loop: the highlight goes 200 ms after the
    # last dragover, which a loaded machine can take between two Playwright calls.
    highlighted = page.evaluate(
        """(transfer) => {
          const zone = document.getElementById("dropzone");
          zone.dispatchEvent(new DragEvent("dragover",
            { dataTransfer: transfer, bubbles: true, cancelable: true }));
          return zone.classList.contains("dragging");
        }""",
        transfer,
    )
    assert highlighted, "dragging files over the page highlights the drop zone"
    page.dispatch_event("#dropzone", "drop", {"dataTransfer": transfer})


def rows(page) -> dict[str, dict]:
    return {row["name"]: row for row in page.locator(".upload-item").evaluate_all(ROWS)}


def wait_until_done(page) -> None:
    page.locator("#upload-summary[data-done=true]").wait_for(timeout=120_000)
    page.wait_for_function(
        """() => [...document.querySelectorAll(".upload-thumb img")]
                 .every((image) => image.complete && image.naturalWidth > 0)"""
    )


def summary(page) -> str:
    return " ".join(page.locator("#upload-summary").inner_text().split())


def throttle_uploads(page, bytes_per_second: int) -> None:
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {
            "offline": False,
            "latency": 0,
            "downloadThroughput": -1,
            "uploadThroughput": bytes_per_second,
        },
    )


def upload_posts(page) -> list:
    posts: list = []
    page.on(
        "request",
        lambda request: (
            posts.append(request.post_data_buffer)
            if request.method == "POST" and request.url.endswith("/upload/")
            else None
        ),
    )
    return posts


def test_dropped_files_show_progress_then_each_ones_fate(page, running_app):
    log_in(page, running_app)
    page.get_by_role("link", name="Upload").click()
    page.get_by_role("button", name="Choose photos").wait_for()  # shown by the page's script
    assert not page.get_by_role("button", name="Upload", exact=True).is_visible()
    screenshot(page, "30-upload-empty")

    good = {name: image_bytes(scene, name) for name, scene in DROPPED.items()}
    first = good["orange-triangles.jpg"]
    files = [payload(name, data) for name, data in good.items()]
    files += [
        payload("damaged.jpg", first[: len(first) // 2]),  # a whole header, half the data
        payload("notes.txt", b"buy milk", type_="text/plain"),
        payload("huge.jpg", size=100 * 1024 * 1024 + 1),
        payload("orange-triangles copy.jpg", first),
    ]
    posts = upload_posts(page)
    throttle_uploads(page, 64 * 1024)

    drop(page, files)

    # Three at a time, each with its own bar.
    page.wait_for_function(
        """() => [...document.querySelectorAll(".upload-item[data-phase=sending] progress")]
                 .some((bar) => bar.value > 0 && bar.value < 100)""",
        timeout=20_000,
    )
    sending = page.locator(".upload-item[data-phase=sending]").count()
    assert 1 <= sending <= 3
    assert re.fullmatch(
        r"Sending \d+%|Checking", page.locator(".status-sending").first.inner_text()
    )
    screenshot(page, "31-upload-sending")
    throttle_uploads(page, -1)

    wait_until_done(page)
    screenshot(page, "32-upload-done")

    found = rows(page)
    assert list(found) == [file["name"] for file in files]
    for name in good:
        assert (found[name]["status"], found[name]["label"]) == ("ready", "Ready"), found[name]
        assert found[name]["thumbnail"]
        assert re.fullmatch(r"/photos/\d+/", found[name]["link"])
    damaged = found["damaged.jpg"]
    assert (damaged["status"], damaged["label"]) == ("failed", "Failed")
    assert damaged["note"].startswith(DAMAGED)
    assert (found["notes.txt"]["label"], found["notes.txt"]["note"]) == ("Refused", NOT_AN_IMAGE)
    assert (found["huge.jpg"]["label"], found["huge.jpg"]["note"]) == ("Refused", TOO_BIG)
    copy = found["orange-triangles copy.jpg"]
    assert copy["status"] == "ready" and copy["link"] == found["orange-triangles.jpg"]["link"]
    assert copy["note"] == "already in your library, not stored again"
    assert summary(page) == (
        "Upload of 8 files finished. 5 uploaded, 1 duplicate, 2 refused. 5 ready, 1 failed. "
        "All done. See them on My photos"
    )
    # One request per file; the file over the limit is never sent.
    assert len(posts) == len(files) - 1

    page.get_by_role("link", name="See them on My photos").click()
    page.wait_for_url(re.compile(r"/photos/$"))
    assert "damaged.jpg" in page.locator("table.photos").inner_text()


def test_a_dropped_folder_is_walked_for_its_images(page, running_app):
    log_in(page, running_app)
    page.goto("/upload/")
    tree = {
        "name": "Holiday",
        "children": [
            *({"name": name} for name in FOLDER),
            {"name": "notes.txt"},
            {"name": ".DS_Store"},
            {"name": "more", "children": [{"name": name} for name in SUBFOLDER]},
        ],
    }
    scenes = {**FOLDER, **SUBFOLDER}
    files = [payload(name, image_bytes(scene, name)) for name, scene in scenes.items()]
    files += [payload("notes.txt", b"buy milk", type_="text/plain")]
    files += [payload(".DS_Store", b"\0\0\0\1Bud1", type_="")]

    page.evaluate(DROP_FOLDER, [tree, files])
    wait_until_done(page)

    found = rows(page)
    assert list(found) == [
        "Holiday/a-purple-star.jpg",
        "Holiday/b-black-squares.png",
        "Holiday/c-white-circle.jpg",
        "Holiday/more/d-red-cross.jpg",
    ]
    assert {row["status"] for row in found.values()} == {"ready"}
    assert summary(page) == (
        "Upload of 4 files finished. 4 uploaded, 0 duplicates, 0 refused. 4 ready, 0 failed. "
        "2 files in folders skipped: not images. All done. See them on My photos"
    )


def test_chosen_files_upload_at_once_and_the_results_answer_the_keyboard(
    page, running_app, tmp_path
):
    for name, scene in CHOSEN.items():
        (tmp_path / name).write_bytes(image_bytes(scene, name))
    log_in(page, running_app)
    page.goto("/upload/")

    # The hidden chooser behind "Choose photos": choosing is enough, no button to press.
    page.locator("input[name=photos]").set_input_files([str(tmp_path / name) for name in CHOSEN])
    wait_until_done(page)
    assert {row["status"] for row in rows(page).values()} == {"ready"}

    page.goto("/?q=a+shape&strictness=all")
    tiles = page.locator("ol.grid > li.tile > a.tile-link")
    hrefs = tiles.evaluate_all("links => links.map((link) => link.getAttribute('href'))")
    assert len(hrefs) >= 8
    alts = page.locator("ol.grid img").evaluate_all("images => images.map((image) => image.alt)")
    assert all(alt and not alt.endswith((".jpg", ".png")) for alt in alts), alts  # from tags
    columns = page.evaluate(
        """() => { const tops = [...document.querySelectorAll("ol.grid > li.tile")]
                     .map((tile) => tile.getBoundingClientRect().top);
                   return tops.filter((top) => top === tops[0]).length; }"""
    )
    assert page.locator("#keys-help").is_visible()

    def focused() -> str | None:
        return page.evaluate("document.activeElement.getAttribute('href')")

    search_box = page.get_by_label("Describe a photo")
    assert page.evaluate("document.activeElement.id") == "id_q"  # the page starts there
    page.keyboard.press("ArrowDown")
    assert focused() == hrefs[0]
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert focused() == hrefs[2]
    page.keyboard.press("ArrowDown")
    assert focused() == hrefs[2 + columns]
    screenshot(page, "33-search-keyboard-focus")
    page.keyboard.press("ArrowLeft")
    page.keyboard.press("ArrowUp")
    assert focused() == hrefs[1]
    page.keyboard.press("End")
    assert focused() == hrefs[-1]
    page.keyboard.press("Home")
    assert focused() == hrefs[0]
    page.keyboard.press("ArrowLeft")  # nothing before the first tile: stays
    assert focused() == hrefs[0]

    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "id_q"
    assert search_box.input_value() == "a shape"  # the slash was not typed into it

    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(re.escape(hrefs[1]) + "$"))


def test_files_chosen_before_the_script_runs_are_sent_too(page, running_app, tmp_path):
    scene = Scene("circle", "pink", 3, "small", None, "green", "dotted", 61)
    path = tmp_path / "early.jpg"
    path.write_bytes(image_bytes(scene, path.name))
    log_in(page, running_app)
    held = []
    # The name is hashed without debug (upload.<hash>.js), as ./dev up serves it.
    page.route("**/static/js/upload*.js", lambda route: held.append(route))

    page.goto("/upload/", wait_until="commit")
    page.locator("input[name=photos]").set_input_files(str(path))
    page.wait_for_function("() => document.querySelector('input[name=photos]').files.length")
    while not held:
        page.wait_for_timeout(50)
    held[0].continue_()

    wait_until_done(page)
    assert rows(page)["early.jpg"]["status"] == "ready"


def test_over_the_upload_rate_limit_the_page_waits_and_goes_on(page, running_app):
    log_in(page, running_app)
    page.goto("/upload/")
    refused: list[str] = []

    def refuse_the_first(route):
        if route.request.method == "POST" and not refused:
            refused.append(route.request.url)
            # What the rate limit middleware answers a page (HTML) over the limit.
            route.fulfill(status=429, headers={"Retry-After": "2"}, body="Too many uploads")
        else:
            route.continue_()

    page.route("**/upload/", refuse_the_first)
    scenes = {
        "limited-orange-circle.jpg": Scene("circle", "orange", 1, "large", "top", "purple",
                                           "striped", 71),
        "limited-blue-stars.jpg": Scene("star", "blue", 3, "small", None, "white", "dotted", 72),
    }  # fmt: skip
    drop(page, [payload(name, image_bytes(scene, name)) for name, scene in scenes.items()])

    page.wait_for_function(
        "() => document.getElementById('upload-summary').textContent.includes('going on in')"
    )
    wait_until_done(page)
    assert len(refused) == 1
    assert {row["status"] for row in rows(page).values()} == {"ready"}
    assert "going on in" not in summary(page)


def test_phone_sized_upload_page(browser, running_app):
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        base_url=running_app.url,
        is_mobile=True,
        has_touch=True,
    )
    page = context.new_page()
    try:
        log_in(page, running_app)
        page.goto("/upload/")
        # A touch screen: the buttons alone, no talk of dropping.
        assert page.get_by_role("button", name="Choose photos").is_visible()
        assert not page.get_by_text("Drop photos or folders here").is_visible()
        screenshot(page, "34-phone-upload-empty")
        scene = Scene("triangle", "yellow", 2, "large", None, "blue", "striped", 41)
        long_name = "a-photo-with-a-very-long-file-name-from-a-camera-roll-2024-07-14.jpg"
        files = [
            payload(long_name, image_bytes(scene, long_name)),
            payload("notes about the trip and what to pack.txt", b"milk", type_="text/plain"),
            payload("too big.jpg", size=100 * 1024 * 1024 + 1),
        ]
        throttle_uploads(page, 32 * 1024)
        drop(page, files)
        page.locator(".upload-item[data-phase=sending]").first.wait_for()
        screenshot(page, "35-phone-upload-sending")
        throttle_uploads(page, -1)
        wait_until_done(page)
        screenshot(page, "36-phone-upload-done")
        assert rows(page)[long_name]["status"] == "ready"
        page.goto("/?q=yellow+triangles&strictness=all")
        screenshot(page, "37-phone-search")
    finally:
        context.close()


def test_without_scripts_the_plain_form_still_uploads(browser, running_app, tmp_path):
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, base_url=running_app.url, java_script_enabled=False
    )
    page = context.new_page()
    try:
        log_in(page, running_app)
        page.goto("/upload/")
        assert not page.get_by_role("button", name="Choose photos").is_visible()
        path = Path(tmp_path / "no-script.jpg")
        scene = Scene("star", "green", 3, "small", None, "pink", "plain", 51)
        path.write_bytes(image_bytes(scene, path.name))
        page.get_by_label("Photos (choose several at once)").set_input_files(str(path))
        screenshot(page, "38-upload-without-scripts")
        page.get_by_role("button", name="Upload", exact=True).click()
        page.wait_for_url(re.compile(r"/photos/$"))
        assert "1 photo(s) uploaded and queued." in page.locator(".messages").inner_text()
        assert "no-script.jpg" in page.locator("table.photos").inner_text()
    finally:
        context.close()
