"""Text in photos on the pages and in the API: matched words on tiles, boxes on the photo
page, the photo's text in the API (checked against the schema), OCR on the dashboard."""

import re

import pytest

from search.models import Photo, PhotoText, Pipeline
from search.photos.services import photo_create
from search.text.services import photo_text_store
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.ocr import TextBox, TextReading

pytestmark = pytest.mark.django_db


@pytest.fixture
def receipt(alice) -> Photo:
    photos = [
        photo_create(owner=alice, file=upload_file(f"{i}.jpg", encode(make_image(color=c)))).photo
        for i, c in enumerate(("red", "blue"))
    ]
    embed_waiting()
    PhotoText.objects.bulk_create([PhotoText(photo=photo) for photo in photos])
    reading = TextReading(
        engine="rapidocr",
        words=(
            TextBox(text="TESCO", confidence=0.97, box=(0.1, 0.2, 0.3, 0.3)),
            TextBox(text="Café", confidence=0.91, box=(0.4, 0.2, 0.6, 0.3)),
        ),
    )
    photo_text_store(photo_id=photos[1].pk, reading=reading)
    return Photo.objects.get(pk=photos[1].pk)


def test_results_show_the_matched_words_and_link_to_the_highlight(alice_client, receipt):
    page = alice_client.get("/", {"q": "tesco"}).content.decode()
    assert "<mark>tesco</mark>" in page
    assert f'href="/photos/{receipt.pk}/?q=tesco"' in page
    assert "1 photo whose text matches" in page

    detail = alice_client.get(f"/photos/{receipt.pk}/", {"q": "tesco"}).content.decode()
    assert "<mark>TESCO</mark> Café" in detail
    rects = re.findall(r'<rect class="text-box( matched)?" x="([\d.]+)" y="([\d.]+)"', detail)
    assert rects == [(" matched", "10", "20"), ("", "40", "20")]
    # Without a query the boxes are drawn, none highlighted.
    plain = alice_client.get(f"/photos/{receipt.pk}/").content.decode()
    assert "text-box matched" not in plain and 'class="text-box"' in plain


def test_api_search_and_photo_carry_the_text(api, alice_token, receipt):
    response = api.get("/api/search", token=alice_token, query={"q": "cafe"})
    body = response.json()
    assert response.status_code == 200 and body["text_matches"] == 1
    hit = body["hits"][0]
    assert hit["photo"]["id"] == receipt.pk and hit["matched_text"] == ["cafe"]
    assert hit["clip_score"] < hit["score"]

    only = api.get("/api/search", token=alice_token, query={"q": "text: tesc"}).json()
    assert only["text_only"] and [h["photo"]["id"] for h in only["hits"]] == [receipt.pk]

    detail = api.get(f"/api/photos/{receipt.pk}", token=alice_token).json()
    assert detail["text"]["status"] == "done" and detail["text"]["text"] == "TESCO Café"
    assert detail["text"]["words"][0] == {
        "text": "TESCO", "confidence": 0.97, "box": [0.1, 0.2, 0.3, 0.3]
    }  # fmt: skip


def test_dashboard_shows_ocr_and_turns_it_off_and_on(client, staff, settings, receipt):
    settings.MEDIASEARCH_OCR_ENABLED = True
    client.force_login(staff)
    page = client.get("/dashboard/").content.decode()
    assert "OCR is on" in page and "1 read, 1 with text, 0 failed, 1 waiting" in page
    client.post("/dashboard/ocr-off/")
    assert Pipeline.objects.get(pk=1).ocr_enabled is False
    assert "OCR is off" in client.get("/dashboard/").content.decode()
    client.post("/dashboard/ocr-on/")
    assert Pipeline.objects.get(pk=1).ocr_enabled is True
