"""The upload page's script: one file per request answered in JSON, then the photos' states
from /photos/status/. The plain form (no script) is covered in test_views."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from search.albums.services import album_add_photos, album_create, album_share
from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.images import ACCEPTED_FORMATS_TEXT

pytestmark = pytest.mark.django_db

JSON = {"HTTP_ACCEPT": "application/json"}
# What Chromium sends with a plain form post.
BROWSER_FORM = {
    "HTTP_ACCEPT": "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,"
    "image/webp,*/*;q=0.8"
}
NOT_AN_IMAGE = (
    "not a supported image or video (images: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, "
    "AVIF, JPEG 2000, Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
    "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2; "
    "videos: MP4/MOV, MKV, WebM, AVI)"
)


def send(client, name: str, data: bytes, **headers):
    return client.post(reverse("search:upload"), {"photos": [upload_file(name, data)]}, **headers)


def test_one_file_sent_by_the_script_is_answered_in_json(alice_client, alice):
    response = send(alice_client, "red.jpg", encode(make_image(color="red")), **JSON)

    assert (response.status_code, response["Content-Type"]) == (200, "application/json")
    photo = Photo.objects.get(owner=alice)
    assert response.json() == {
        "created": 1,
        "duplicates": 0,
        "rejected": 0,
        "results": [
            {
                "filename": "red.jpg",
                "outcome": "created",
                "reason": "",
                "photo": {
                    "id": photo.pk,
                    "filename": "red.jpg",
                    "status": "pending",
                    "failure_reason": "",
                    "url": f"/photos/{photo.pk}/",
                    "thumbnail": None,
                },
            }
        ],
    }
    # The page shows the outcome itself: no message is left for the next page.
    assert "uploaded and queued" not in alice_client.get(reverse("search:photo_list")).text


def test_the_same_bytes_again_answer_the_photo_already_there(alice_client, alice):
    data = encode(make_image(color="green"))
    first = send(alice_client, "a.jpg", data, **JSON).json()["results"][0]["photo"]
    assert embed_waiting() == {first["id"]: Photo.Status.READY}

    (result,) = send(alice_client, "copy.jpg", data, **JSON).json()["results"]

    assert (result["filename"], result["outcome"], result["reason"]) == (
        "copy.jpg",
        "duplicate",
        "",
    )
    assert result["photo"] == {
        "id": first["id"],
        "filename": "a.jpg",
        "status": "ready",
        "failure_reason": "",
        "url": f"/photos/{first['id']}/",
        "thumbnail": f"/photos/{first['id']}/thumbnail/",
    }
    assert Photo.objects.filter(owner=alice).count() == 1


def test_a_refused_file_is_answered_with_its_reason_and_nothing_is_stored(alice_client):
    response = send(alice_client, "notes.jpg", b"buy milk", **JSON)

    assert response.status_code == 200
    assert response.json() == {
        "created": 0,
        "duplicates": 0,
        "rejected": 1,
        "results": [
            {"filename": "notes.jpg", "outcome": "rejected", "reason": NOT_AN_IMAGE, "photo": None}
        ],
    }
    assert not Photo.objects.exists()


def test_a_file_over_the_limit_is_refused_with_the_words_the_page_uses(alice_client, settings):
    settings.MEDIASEARCH_MAX_UPLOAD_BYTES = 2 * 1024 * 1024
    page = alice_client.get(reverse("search:upload")).text
    assert 'data-max-bytes="2097152"' in page
    assert 'data-too-big="the file is larger than the 2 MB limit"' in page

    (result,) = send(alice_client, "big.jpg", b"\xff" * (2 * 1024 * 1024 + 1), **JSON).json()[
        "results"
    ]

    assert (result["outcome"], result["reason"]) == (
        "rejected",
        "the file is larger than the 2 MB limit",
    )
    assert not Photo.objects.exists()


def test_a_script_post_without_a_file_is_a_json_error(alice_client):
    response = alice_client.post(reverse("search:upload"), {}, **JSON)

    assert (response.status_code, response.json()) == (
        400,
        {"detail": "Choose at least one photo."},
    )
    assert not Photo.objects.exists()


def test_a_plain_form_post_from_a_browser_still_goes_to_the_photo_list(alice_client):
    response = send(alice_client, "red.jpg", encode(make_image()), **BROWSER_FORM)

    assert (response.status_code, response["Location"]) == (302, reverse("search:photo_list"))
    assert response["Vary"].count("Accept") == 1


def test_the_script_sends_the_csrf_token_of_the_form_in_a_header(alice):
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    page = client.get(reverse("search:upload")).text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    data = encode(make_image())

    refused = send(client, "a.jpg", data, **JSON)
    accepted = send(client, "a.jpg", data, HTTP_X_CSRFTOKEN=token, **JSON)

    assert refused.status_code == 403
    assert accepted.json()["results"][0]["outcome"] == "created"


def test_the_upload_page_offers_drop_and_keeps_the_plain_form(alice_client):
    page = alice_client.get(reverse("search:upload")).text

    assert '<script src="/static/js/upload.js" defer></script>' in page
    assert 'data-status-url="/photos/status/"' in page
    assert re.search(r'<input type="file" name="photos"[^>]* multiple', page)
    assert re.search(r'<button type="submit" class="primary"[^>]*>Upload</button>', page)
    assert "<script>" not in page and "onsubmit" not in page


def test_the_upload_page_names_every_accepted_format_from_the_allowlist(alice_client, settings):
    settings.MEDIASEARCH_MAX_UPLOAD_BYTES = 30 * 1024 * 1024
    page = alice_client.get(reverse("search:upload")).text

    assert f'<p class="hint">{ACCEPTED_FORMATS_TEXT}; up to 30 MB each.' in page
    assert f"(images: {ACCEPTED_FORMATS_TEXT}; videos: " in NOT_AN_IMAGE  # what a refusal says


# --- /photos/status/ -----------------------------------------------------------------------


def stored(owner, name: str, color: str) -> Photo:
    return photo_create(owner=owner, file=upload_file(name, encode(make_image(color=color)))).photo


def photo_queries(captured) -> list[str]:
    return [query["sql"] for query in captured if 'FROM "search_photo"' in query["sql"]]


def test_status_gives_the_state_of_the_users_own_photos_in_one_query(alice_client, alice, bob):
    ready = stored(alice, "ready.jpg", "blue")
    assert embed_waiting() == {ready.pk: Photo.Status.READY}
    pending = stored(alice, "pending.jpg", "red")  # after the pipeline has run: left waiting
    failed = stored(alice, "failed.jpg", "green")
    Photo.objects.filter(pk=failed.pk).update(
        status="failed", failure_reason="the image data is damaged"
    )
    bobs = stored(bob, "bob.jpg", "red")
    ids = [failed.pk, bobs.pk, ready.pk, 999999, pending.pk]

    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(reverse("search:photo_status"), {"id": ids})

    assert len(photo_queries(captured)) == 1
    assert "no-cache" in response["Cache-Control"]
    assert response.json() == {
        "photos": [
            {
                "id": ready.pk,
                "filename": "ready.jpg",
                "status": "ready",
                "failure_reason": "",
                "url": f"/photos/{ready.pk}/",
                "thumbnail": f"/photos/{ready.pk}/thumbnail/",
            },
            {
                "id": pending.pk,
                "filename": "pending.jpg",
                "status": "pending",
                "failure_reason": "",
                "url": f"/photos/{pending.pk}/",
                "thumbnail": None,
            },
            {
                "id": failed.pk,
                "filename": "failed.jpg",
                "status": "failed",
                "failure_reason": "the image data is damaged",
                "url": f"/photos/{failed.pk}/",
                "thumbnail": None,
            },
        ]
    }


def test_status_leaves_out_photos_the_user_only_sees_in_a_shared_album(client, alice, bob):
    photo = stored(alice, "shared.jpg", "red")
    album = album_create(owner=alice, name="Shared")
    album_add_photos(album=album, photo_ids=[photo.pk])
    album_share(album=album, usernames=["bob"])
    client.force_login(bob)

    assert client.get(reverse("search:photo_detail", args=[photo.pk])).status_code == 200
    assert client.get(reverse("search:photo_status"), {"id": photo.pk}).json() == {"photos": []}


def test_status_ignores_what_is_not_an_id(alice_client, alice):
    photo = stored(alice, "a.jpg", "red")
    junk = ["", "abc", "-1", "1.5", "²", "9" * 30, str(photo.pk)]

    response = alice_client.get(reverse("search:photo_status"), {"id": junk})

    assert [item["id"] for item in response.json()["photos"]] == [photo.pk]


def test_status_without_ids_answers_nothing_without_a_query(alice_client):
    with CaptureQueriesContext(connection) as captured:
        response = alice_client.get(reverse("search:photo_status"))
    assert response.json() == {"photos": []}
    assert photo_queries(captured) == []


def test_status_refuses_too_many_ids_at_once(alice_client):
    response = alice_client.get(reverse("search:photo_status"), {"id": list(range(1, 202))})
    assert (response.status_code, response.json()) == (
        400,
        {"detail": "Ask for at most 200 photos at a time."},
    )


def test_status_needs_a_login(client):
    response = client.get(reverse("search:photo_status"), {"id": 1})
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_the_page_and_the_api_show_a_photo_in_one_shape(alice_client, alice, api, alice_token):
    """The page's photo is the API's core (``photo_state_out``) and the page's two links: every
    field they share says the same, so the script and API clients read one shape."""
    sent = send(alice_client, "red.jpg", encode(make_image(color="red")), **JSON).json()
    page_photo = sent["results"][0]["photo"]
    assert embed_waiting() == {page_photo["id"]: Photo.Status.READY}
    polled = alice_client.get(reverse("search:photo_status"), {"id": page_photo["id"]}).json()
    api_photo = api.get(f"/api/photos/{page_photo['id']}", token=alice_token).json()

    for shown in (page_photo, polled["photos"][0]):
        assert set(shown) - set(api_photo) == {"url", "thumbnail"}
        assert set(shown) & set(api_photo) == {"id", "filename", "status", "failure_reason"}
    assert {key: polled["photos"][0][key] for key in ("id", "filename", "status")} == {
        key: api_photo[key] for key in ("id", "filename", "status")
    }
    assert polled["photos"][0]["thumbnail"] == api_photo["web"]["thumbnail"].removeprefix(
        "http://testserver"
    )
