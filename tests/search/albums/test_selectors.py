"""Album reads: the order of an album's photos, on its page and in the API."""

from datetime import UTC, datetime

import pytest
from django.urls import reverse

from search.albums.selectors import album_photos
from search.albums.services import album_add_photos, album_create
from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db


@pytest.fixture
def album_with_undated(alice):
    """Photos taken in 2020 and 2021 and one undated, added in that order, all ready."""
    album = album_create(owner=alice, name="A")
    taken_in = {}
    for color, taken in (("red", 2020), ("blue", None), ("green", 2021)):
        photo = photo_create(
            owner=alice, file=upload_file(f"{color}.jpg", encode(make_image(color=color)))
        ).photo
        taken_in[photo.pk] = taken
    assert embed_waiting() == dict.fromkeys(taken_in, Photo.Status.READY)
    for pk, taken in taken_in.items():  # after embedding, which reads the (absent) EXIF date
        when = datetime(taken, 6, 1, tzinfo=UTC) if taken else None
        Photo.objects.filter(pk=pk).update(taken_at=when)
    ids = list(taken_in)
    album_add_photos(album=album, photo_ids=ids)
    red, undated, green = ids
    return album, [green, red, undated]


def test_newest_taken_first_and_undated_last(album_with_undated):
    album, expected = album_with_undated
    assert list(album_photos(album).values_list("pk", flat=True)) == expected


def test_the_album_page_and_the_api_use_that_order(
    alice_client, api, alice_token, album_with_undated
):
    album, expected = album_with_undated
    page = alice_client.get(reverse("search:album_detail", args=[album.pk]))
    listed = api.get(f"/api/albums/{album.pk}/photos", token=alice_token).json()

    assert [photo.pk for photo in page.context["page"]] == expected
    assert [item["id"] for item in listed["items"]] == expected
