"""Bob's token against everything of Alice's: every operation of the API has a case here, and a
test fails when an operation is added without one.

Each case also makes one successful call of its operation on Bob's own things, so every
operation's success answer is checked against the schema too (see ``api_schema.ApiClient``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
from django.core.files.base import ContentFile

from search.albums.services import album_add_photos, album_create
from search.models import Album, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db


@dataclass
class World:
    alice_photo: Photo
    alice_album: Album  # private, holding her photo
    bob_photo: Photo
    bob_album: Album
    token: str  # bob's


@pytest.fixture
def world(alice, bob, bob_token) -> World:
    made, uploaded = [], []
    for owner, color, name in ((alice, "red", "Holidays"), (bob, "blue", "Trips")):
        photo = photo_create(
            owner=owner, file=upload_file(f"{color}.jpg", encode(make_image(color=color)))
        ).photo
        uploaded.append((owner, name, photo))
    assert embed_waiting() == {photo.pk: Photo.Status.READY for _, _, photo in uploaded}
    for owner, name, photo in uploaded:
        photo.refresh_from_db()
        album = album_create(owner=owner, name=name)
        album_add_photos(album=album, photo_ids=[photo.pk])
        made += [photo, album]
    return World(*made, token=bob_token)


CASES: dict[tuple[str, str], Callable] = {}


def case(method: str, path: str):
    def register(check):
        CASES[(method, path)] = check
        return check

    return register


def assert_hidden(response, detail: str) -> None:
    """The answer for something Bob may not see: exactly that for an id that does not exist."""
    assert (response.status_code, response.json()) == (404, {"detail": detail})


def alice_photo_unchanged(world: World) -> None:
    photo = Photo.objects.get(pk=world.alice_photo.pk)
    assert (photo.owner_id, photo.status, photo.original_filename) == (
        world.alice_photo.owner_id,
        "ready",
        "red.jpg",
    )


def alice_album_unchanged(world: World) -> None:
    album = Album.objects.get(pk=world.alice_album.pk)
    assert (album.name, album.owner_id) == ("Holidays", world.alice_album.owner_id)
    assert list(album.photos.values_list("pk", flat=True)) == [world.alice_photo.pk]
    assert not album.shared_with.exists()
    alice_photo_unchanged(world)


def hit_ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [hit["photo"]["id"] for hit in response.json()["hits"]]


# Every photo ranked, so that only visibility decides what comes back.
EVERYTHING = {"strictness": "all"}


@case("GET", "/api/me")
def _me(api, world):
    body = api.get("/api/me", token=world.token).json()
    assert (body["username"], body["photos"], body["albums"], body["shared_albums"]) == (
        "bob",
        1,
        1,
        0,
    )


@case("POST", "/api/photos")
def _upload(api, world):
    # Alice's exact bytes: a new photo of Bob's, not a "duplicate" that would reveal hers.
    data = world.alice_photo.file.open("rb").read()
    body = api.post(
        "/api/photos", token=world.token, multipart={"files": [upload_file("x.jpg", data)]}
    ).json()
    (result,) = body["results"]
    assert result["outcome"] == "created"
    assert result["photo"]["id"] != world.alice_photo.pk and result["photo"]["owner"] == "bob"
    alice_photo_unchanged(world)


@case("GET", "/api/photos")
def _list(api, world):
    for query in ({}, {"status": "ready"}):
        body = api.get("/api/photos", token=world.token, query=query).json()
        assert [item["id"] for item in body["items"]] == [world.bob_photo.pk]
        assert body["count"] == 1


@case("GET", "/api/photos/{photo_id}")
def _detail(api, world):
    pk = world.alice_photo.pk
    assert_hidden(api.get(f"/api/photos/{pk}", token=world.token), f"No photo {pk}.")
    assert api.get(f"/api/photos/{world.bob_photo.pk}", token=world.token).status_code == 200


@case("DELETE", "/api/photos/{photo_id}")
def _delete(api, world):
    pk = world.alice_photo.pk
    assert_hidden(api.delete(f"/api/photos/{pk}", token=world.token), f"No photo {pk}.")
    alice_album_unchanged(world)
    own = api.delete(f"/api/photos/{world.bob_photo.pk}", token=world.token)
    assert own.status_code == 204
    assert not Photo.objects.filter(pk=world.bob_photo.pk).exists()


def _file_case(kind: str):
    @case("GET", f"/api/photos/{{photo_id}}/{kind}")
    def check(api, world):
        pk = world.alice_photo.pk
        response = api.get(f"/api/photos/{pk}/{kind}", token=world.token)
        assert_hidden(response, f"No photo {pk}.")
        own = api.get(f"/api/photos/{world.bob_photo.pk}/{kind}", token=world.token)
        assert own.status_code == 200

    return check


for _kind in ("thumbnail", "preview", "original"):
    _file_case(_kind)


@case("GET", "/api/photos/{photo_id}/motion")
def _motion(api, world):
    # A Live Photo's clip: someone else's photo reads as no photo at all, as its files do.
    pk = world.alice_photo.pk
    for query in ({}, {"download": "1"}):
        response = api.get(f"/api/photos/{pk}/motion", token=world.token, query=query)
        assert_hidden(response, f"No photo {pk}.")
    own = world.bob_photo
    clip = b"\x00\x00\x00\x18ftypmp42" + bytes(64)
    own.motion.save("motion.mp4", ContentFile(clip), save=False)
    own.motion_status = "ready"
    own.save(update_fields=["motion", "motion_status"])
    mine = api.get(f"/api/photos/{own.pk}/motion", token=world.token, query={"download": "1"})
    assert mine.status_code == 200


@case("GET", "/api/search")
def _search(api, world):
    for query in ({"q": "a red circle"}, {"q": "a blue circle"}, {"q": "red -blue"}):
        response = api.get("/api/search", token=world.token, query={**query, **EVERYTHING})
        assert hit_ids(response) == [world.bob_photo.pk]
    by_album = api.get(
        "/api/search", token=world.token, query={"q": "red", "album": world.alice_album.pk}
    )
    assert_hidden(by_album, f"No album {world.alice_album.pk}.")
    staff_only = api.get("/api/search", token=world.token, query={"q": "red", "owner": 1})
    assert staff_only.status_code == 422


@case("POST", "/api/search/image")
def _search_image(api, world):
    data = world.alice_photo.file.open("rb").read()
    response = api.post(
        "/api/search/image",
        token=world.token,
        multipart={"image": upload_file("q.jpg", data), **EVERYTHING},
    )
    assert hit_ids(response) == [world.bob_photo.pk]
    by_album = api.post(
        "/api/search/image",
        token=world.token,
        multipart={"image": upload_file("q.jpg", data), "album": world.alice_album.pk},
    )
    assert_hidden(by_album, f"No album {world.alice_album.pk}.")


@case("GET", "/api/photos/{photo_id}/similar")
def _similar(api, world):
    pk = world.alice_photo.pk
    response = api.get(f"/api/photos/{pk}/similar", token=world.token, query=EVERYTHING)
    assert_hidden(response, f"No photo {pk}.")
    own = api.get(f"/api/photos/{world.bob_photo.pk}/similar", token=world.token, query=EVERYTHING)
    assert hit_ids(own) == []  # his only photo is the query itself


@case("GET", "/api/albums")
def _albums(api, world):
    body = api.get("/api/albums", token=world.token).json()
    assert [album["id"] for album in body] == [world.bob_album.pk]


@case("POST", "/api/albums")
def _album_create(api, world):
    # The same name as Alice's album: names are per owner, and hers is not revealed.
    response = api.post("/api/albums", token=world.token, json={"name": "Holidays"})
    assert response.status_code == 201
    assert response.json()["owner"] == "bob"
    alice_album_unchanged(world)


@case("GET", "/api/albums/{album_id}")
def _album_detail(api, world):
    pk = world.alice_album.pk
    assert_hidden(api.get(f"/api/albums/{pk}", token=world.token), f"No album {pk}.")
    assert api.get(f"/api/albums/{world.bob_album.pk}", token=world.token).status_code == 200


@case("PATCH", "/api/albums/{album_id}")
def _album_rename(api, world):
    pk = world.alice_album.pk
    response = api.patch(f"/api/albums/{pk}", token=world.token, json={"name": "Mine now"})
    assert_hidden(response, f"No album {pk}.")
    alice_album_unchanged(world)
    own = api.patch(f"/api/albums/{world.bob_album.pk}", token=world.token, json={"name": "B"})
    assert own.json()["name"] == "B"


@case("DELETE", "/api/albums/{album_id}")
def _album_delete(api, world):
    pk = world.alice_album.pk
    assert_hidden(api.delete(f"/api/albums/{pk}", token=world.token), f"No album {pk}.")
    alice_album_unchanged(world)
    own = api.delete(f"/api/albums/{world.bob_album.pk}", token=world.token)
    assert own.status_code == 204


@case("GET", "/api/albums/{album_id}/photos")
def _album_photos(api, world):
    pk = world.alice_album.pk
    assert_hidden(api.get(f"/api/albums/{pk}/photos", token=world.token), f"No album {pk}.")
    own = api.get(f"/api/albums/{world.bob_album.pk}/photos", token=world.token).json()
    assert [item["id"] for item in own["items"]] == [world.bob_photo.pk]


@case("POST", "/api/albums/{album_id}/photos")
def _album_add(api, world):
    pk = world.alice_album.pk
    ids = {"photo_ids": [world.bob_photo.pk]}
    response = api.post(f"/api/albums/{pk}/photos", token=world.token, json=ids)
    assert_hidden(response, f"No album {pk}.")
    # Her photo into his own album: ignored, not added.
    response = api.post(
        f"/api/albums/{world.bob_album.pk}/photos",
        token=world.token,
        json={"photo_ids": [world.alice_photo.pk]},
    )
    assert (response.json()["added"], response.json()["album"]["photo_count"]) == (0, 1)
    alice_album_unchanged(world)


@case("DELETE", "/api/albums/{album_id}/photos")
def _album_remove(api, world):
    pk = world.alice_album.pk
    ids = {"photo_ids": [world.alice_photo.pk]}
    response = api.delete(f"/api/albums/{pk}/photos", token=world.token, json=ids)
    assert_hidden(response, f"No album {pk}.")
    alice_album_unchanged(world)
    own = api.delete(f"/api/albums/{world.bob_album.pk}/photos", token=world.token, json=ids)
    assert own.json()["removed"] == 0


@case("POST", "/api/albums/{album_id}/shares")
def _album_share(api, world):
    pk = world.alice_album.pk
    me = {"usernames": ["bob"]}
    response = api.post(f"/api/albums/{pk}/shares", token=world.token, json=me)
    assert_hidden(response, f"No album {pk}.")
    alice_album_unchanged(world)
    assert api.get(f"/api/photos/{world.alice_photo.pk}", token=world.token).status_code == 404
    own = api.post(
        f"/api/albums/{world.bob_album.pk}/shares", token=world.token, json={"usernames": ["alice"]}
    )
    assert own.json()["shared_with"] == ["alice"]


@case("DELETE", "/api/albums/{album_id}/shares")
def _album_unshare(api, world):
    pk = world.alice_album.pk
    me = {"usernames": ["bob"]}
    response = api.delete(f"/api/albums/{pk}/shares", token=world.token, json=me)
    assert_hidden(response, f"No album {pk}.")
    alice_album_unchanged(world)
    own = api.delete(f"/api/albums/{world.bob_album.pk}/shares", token=world.token, json=me)
    assert own.json()["shared_with"] == []


def test_every_api_operation_has_an_isolation_case(api):
    missing = sorted(set(api.operations()) - set(CASES))
    assert not missing, f"add a case for {missing} to {__name__}"
    assert not sorted(set(CASES) - set(api.operations())), "a case for an operation that is gone"


@pytest.mark.parametrize("operation", sorted(CASES), ids=" ".join)
def test_bob_reaches_nothing_of_alices(api, world, operation):
    CASES[operation](api, world)

    answered = api.seen.get(operation, [])
    assert any(200 <= status < 300 for status in answered), (
        f"the case for {operation} makes no successful call of it ({answered})"
    )


def test_staff_tokens_see_every_photo(api, world, staff_token):
    pk = world.alice_photo.pk
    assert api.get(f"/api/photos/{pk}", token=staff_token).json()["owner"] == "alice"
    assert api.get(f"/api/photos/{pk}/thumbnail", token=staff_token).status_code == 200
