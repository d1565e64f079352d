"""Places in the browser: the country filter, and a place named in the query shown as a chip
that can be removed, against ``./dev up`` with the real geocoder."""

from __future__ import annotations

import pytest

from tests.browser.conftest import log_in, screenshot
from tests.places_photos import placed_jpeg

pytestmark = pytest.mark.browser

# Shapes and colours the other browser tests do not search for, so their rankings stay theirs.
FILES = {
    "orange-triangle-lisbon.jpg": ("orange", "triangle", "lisbon"),
    "orange-square-porto.jpg": ("orange", "square", "porto"),
    "orange-cross-paris.jpg": ("orange", "cross", "paris"),
    "orange-circle-nowhere.jpg": ("orange", "circle", None),
}


def result_names(page) -> list[str]:
    return page.locator("ol.grid li.tile > a").evaluate_all("els => els.map(e => e.title)")


def test_filter_by_country_and_remove_a_place_named_in_the_query(page, running_app, tmp_path):
    for i, (name, (colour, shape, place)) in enumerate(FILES.items()):
        (tmp_path / name).write_bytes(placed_jpeg(colour, shape, place, seed=40 + i))
    # Run alone, this test's login is the app's first page: it waits for the model to load.
    page.set_default_timeout(120_000)
    log_in(page, running_app)
    page.get_by_role("link", name="Upload").click()
    page.locator("input[name=photos]").set_input_files([str(tmp_path / n) for n in FILES])
    page.locator("#upload-summary[data-done=true]").wait_for(timeout=120_000)
    assert page.locator(".upload-item .status-ready").count() == len(FILES)

    # The filter form offers the countries of the library with their counts.
    page.get_by_role("link", name="Search", exact=True).click()
    page.get_by_label("Describe a photo").fill("an orange shape")
    page.get_by_label("Matches").select_option(label="Show all, ranked")
    page.locator("details.filters summary").click()
    page.get_by_label("Country").select_option(label="Portugal (2)")
    page.get_by_role("button", name="Search", exact=True).click()
    assert sorted(result_names(page)) == ["orange-square-porto.jpg", "orange-triangle-lisbon.jpg"]
    screenshot(page, "places-01-country-filter")

    # A place in the words becomes a filter, said in a chip; removing it searches the words.
    page.goto("/?q=an+orange+triangle+in+Lisbon&strictness=all")
    chip = page.locator("[data-place-chip]")
    assert chip.inner_text().startswith("in Lisbon, Portugal")
    assert result_names(page) == ["orange-triangle-lisbon.jpg"]
    screenshot(page, "places-02-place-chip")
    chip.get_by_role("link").click()
    page.wait_for_url("**as_typed=1**")
    assert page.locator("[data-place-chip]").count() == 0
    assert set(FILES) <= set(result_names(page))
    assert page.get_by_label("Describe a photo").input_value() == "an orange triangle in Lisbon"

    # The photo page names the place.
    page.goto("/?q=an+orange+cross+in+Paris&strictness=all")
    page.locator("ol.grid li.tile > a").first.click()
    assert "Paris, Île-de-France, France" in page.locator("dd.place").inner_text()
    screenshot(page, "places-03-photo-page")
