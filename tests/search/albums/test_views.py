"""The album pages' answers to bad input: where "add to album" goes back to, and names with
characters the database cannot hold."""

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from search.albums.services import album_create, album_share
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file

pytestmark = pytest.mark.django_db


@pytest.fixture
def album_and_photo(alice):
    album = album_create(owner=alice, name="A")
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    return album, photo


@pytest.mark.parametrize(
    "next_url",
    [
        "https://evil.example/login",
        "//evil.example/login",
        "/\\evil.example",
        "abc",  # was resolved as a URL name: a 500
        "javascript:alert(1)",
        "/photos/\x00",
        "",
    ],
)
def test_adding_to_an_album_goes_back_only_within_the_site(alice_client, album_and_photo, next_url):
    album, photo = album_and_photo
    response = alice_client.post(
        reverse("search:album_add"), {"album": album.pk, "photo": photo.pk, "next": next_url}
    )

    assert (response.status_code, response["Location"]) == (
        302,
        reverse("search:album_detail", args=[album.pk]),
    )
    assert list(album.photos.all()) == [photo]


def test_adding_to_an_album_goes_back_to_the_page_it_came_from(alice_client, album_and_photo):
    album, photo = album_and_photo
    back = reverse("search:photo_detail", args=[photo.pk]) + "?from=album"
    response = alice_client.post(
        reverse("search:album_add"), {"album": album.pk, "photo": photo.pk, "next": back}
    )

    assert (response.status_code, response["Location"]) == (302, back)


def test_unsharing_a_name_with_a_null_character_changes_nothing(alice_client, album_and_photo, bob):
    album, _ = album_and_photo
    album_share(album=album, usernames=["bob"])

    response = alice_client.post(
        reverse("search:album_edit", args=[album.pk, "unshare"]), {"username": "bob\x00"}
    )

    assert (response.status_code, response["Location"]) == (
        302,
        reverse("search:album_detail", args=[album.pk]),
    )
    assert list(album.shared_with.all()) == [bob]
    assert [str(m) for m in get_messages(response.wsgi_request)] == []
