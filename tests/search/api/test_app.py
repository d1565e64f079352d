"""The API's error answers (search/api/app.py): always JSON, whatever the client sent."""

import pytest

from search.albums.services import album_create
from search.models import Album, Photo

pytestmark = pytest.mark.django_db

LONG_FILENAME = b"a" * 1000 + b".jpg"


def multipart(filename: bytes) -> bytes:
    return (
        b'--B\r\nContent-Disposition: form-data; name="files"; filename="'
        + filename
        + b'"\r\nContent-Type: image/jpeg\r\n\r\nnot an image\r\n--B--\r\n'
    )


@pytest.mark.parametrize(
    ("content_type", "body", "detail"),
    [
        (
            "multipart/form-data",
            multipart(b"a.jpg"),
            "The multipart body cannot be read: Invalid boundary in multipart: None",
        ),
        (
            "multipart/form-data; boundary=B",
            multipart(LONG_FILENAME),  # a part's headers over Django's 1 KB
            "The multipart body cannot be read: Request max total header size exceeded.",
        ),
    ],
)
def test_an_unreadable_upload_is_a_json_400(api, alice, alice_token, content_type, body, detail):
    response = api.client.post(
        "/api/photos",
        body,
        content_type=content_type,
        headers={"Authorization": f"Bearer {alice_token}"},
    )
    api.check("POST", "/api/photos", response)

    assert (response.status_code, response.json()) == (400, {"detail": detail})
    assert not Photo.objects.exists()


def test_a_method_the_address_does_not_take_is_a_json_405(client, alice_token):
    response = client.put("/api/me", headers={"Authorization": f"Bearer {alice_token}"})

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": "Method not allowed: this address takes GET."}
    assert response["Allow"] == "GET"


@pytest.mark.parametrize("content_type", ["text/plain", "", "application/x-www-form-urlencoded"])
def test_a_json_body_must_say_it_is_json(api, alice, alice_token, content_type):
    response = api.client.post(
        "/api/albums",
        b'{"name": "Holidays"}',
        content_type=content_type,
        headers={"Authorization": f"Bearer {alice_token}"},
    )
    api.check("POST", "/api/albums", response)

    assert (response.status_code, response.json()) == (
        415,
        {"detail": "Send the body as JSON, with 'Content-Type: application/json'."},
    )
    assert not Album.objects.exists()


@pytest.mark.parametrize(
    ("suffix", "payload", "detail"),
    [
        ("/photos", {"photo_ids": ["1042"]}, "photo_ids.0: Input should be a valid integer"),
        ("/photos", {"photo_ids": [True]}, "photo_ids.0: Input should be a valid integer"),
        ("/shares", {"usernames": [""]}, "usernames.0: String should have at least 1 character"),
    ],
)
def test_ids_and_names_are_read_strictly(api, alice, bob, alice_token, suffix, payload, detail):
    album = album_create(owner=alice, name="A")

    response = api.post(f"/api/albums/{album.pk}{suffix}", token=alice_token, json=payload)

    assert (response.status_code, response.json()["detail"]) == (422, detail)
    assert not album.photos.exists() and not album.shared_with.exists()
