"""Bob's token against everything of Alice's: every operation of the API has a case here, and a
test fails when an operation is added without one.

Each case also makes one successful call of its operation on Bob's own things, so every
operation's success answer is checked against the schema too (see ``api_schema.ApiClient``)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from search.models import Photo
from search.services import photo_create, photo_embed
from tests.conftest import encode, make_image, upload_file

pytestmark = pytest.mark.django_db


@dataclass
class World:
    alice_photo: Photo
    bob_photo: Photo
    token: str  # bob's


@pytest.fixture
def world(alice, bob, bob_token) -> World:
    photos = []
    for owner, color in ((alice, "red"), (bob, "blue")):
        photo = photo_create(
            owner=owner, file=upload_file(f"{color}.jpg", encode(make_image(color=color)))
        ).photo
        photo_embed(photo_id=photo.pk)
        photo.refresh_from_db()
        photos.append(photo)
    return World(alice_photo=photos[0], bob_photo=photos[1], token=bob_token)


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


@case("GET", "/api/me")
def _me(api, world):
    body = api.get("/api/me", token=world.token).json()
    assert (body["username"], body["photos"], body["albums"]) == ("bob", 1, 0)


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
