"""Bob's session against every web URL, walking the URL resolver: every named URL has a case here
(or an entry in ``PUBLIC``), and a test fails when a URL is added without one. The JSON API has
its own table in ``test_api_isolation``; the admin site is checked as a whole (staff only).

Bob tries Alice's photos, albums and tokens by id and by guessing (ids that do not exist answer
exactly the same), and the pages that list or search show nothing of hers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from search.accounts.services import api_token_create
from search.albums.services import album_add_photos, album_create
from search.ingest.active_model import forget_active_spec
from search.ingest.pipeline import pipeline_is_paused
from search.models import Album, ApiToken, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db

GUESS = 10_000_000  # an id nobody has


def named_urls(patterns=None, namespace: str = "") -> Iterator[tuple[str, URLPattern]]:
    """Every named URL pattern as ("namespace:name", pattern), through nested includes."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            yield from named_urls(entry.url_patterns, inner)
        elif entry.name:
            yield namespace + entry.name, entry


@dataclass
class World:
    alice_photo: Photo
    alice_album: Album
    alice_token: ApiToken
    bob_photo: Photo
    bob_album: Album


@pytest.fixture
def world(alice, bob) -> World:
    made, uploaded = [], []
    for owner, color, name in ((alice, "red", "Holidays"), (bob, "blue", "Trips")):
        data = encode(make_image(color=color))
        photo = photo_create(owner=owner, file=upload_file(f"{owner.username}-secret.jpg", data))
        uploaded.append((owner, name, photo.photo))
    assert embed_waiting() == {photo.pk: Photo.Status.READY for _, _, photo in uploaded}
    for owner, name, photo in uploaded:
        photo.refresh_from_db()
        album = album_create(owner=owner, name=f"{owner.username}-{name}")
        album_add_photos(album=album, photo_ids=[photo.pk])
        made.append((photo, album))
    token = api_token_create(user=alice, name="alice-token")[0]
    return World(made[0][0], made[0][1], token, made[1][0], made[1][1])


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def alice_untouched(world: World) -> None:
    photo = Photo.objects.get(pk=world.alice_photo.pk)
    assert (photo.status, photo.original_filename) == ("ready", "alice-secret.jpg")
    album = Album.objects.get(pk=world.alice_album.pk)
    assert album.name == "alice-Holidays" and not album.shared_with.exists()
    assert list(album.photos.values_list("pk", flat=True)) == [world.alice_photo.pk]
    assert ApiToken.objects.filter(pk=world.alice_token.pk).exists()


def shows_nothing_of_alices(response) -> None:
    assert response.status_code == 200, response.status_code
    html = response.content.decode()
    for secret in ("alice-secret", "alice-Holidays", "alice-token"):
        assert secret not in html


CASES: dict[str, Callable[[Client, World], None]] = {}


def case(*names: str):
    def register(check):
        for name in names:
            CASES[name] = check
        return check

    return register


# URLs with no per-user data behind them (why, in the value).
PUBLIC = {
    "login": "the login form",
    "logout": "ends one's own session",
    "password_change": "one's own password",
    "password_change_done": "a static page",
    "password_reset": "sends mail only to the address of an account; answers the same for any",
    "password_reset_done": "a static page",
    "password_reset_confirm": "needs a signed token for the account",
    "password_reset_complete": "a static page",
    "search:healthz": "says 'ok', nothing else",
}


PHOTO_URLS = [
    "search:photo_detail",
    "search:photo_similar",
    "search:photo_thumbnail",
    "search:photo_preview",
    "search:photo_original",
    "search:photo_playable",
    "search:photo_motion",
]


@case(*PHOTO_URLS)
def _photo_urls(client, world):
    for name in PHOTO_URLS:
        for pk in (world.alice_photo.pk, GUESS):
            assert client.get(reverse(name, args=[pk])).status_code == 404, (name, pk)
            assert client.get(reverse(name, args=[pk]), {"download": "1"}).status_code == 404
    own = client.get(reverse("search:photo_original", args=[world.bob_photo.pk]))
    assert own.status_code == 200


@case("search:photo_status")
def _photo_status(client, world):
    ids = [world.alice_photo.pk, GUESS, world.bob_photo.pk]
    response = client.get(reverse("search:photo_status"), {"id": ids})
    shows_nothing_of_alices(response)
    assert [photo["id"] for photo in response.json()["photos"]] == [world.bob_photo.pk]


@case("search:home")
def _home(client, world):
    for pk in (world.alice_photo.pk, GUESS):
        assert client.get(reverse("search:home"), {"similar": pk}).status_code == 404
    response = client.get(reverse("search:home"), {"q": "a red circle", "strictness": "all"})
    shows_nothing_of_alices(response)
    assert [hit.photo.pk for hit in response.context["page"]] == [world.bob_photo.pk]


@case("search:search_by_image")
def _search_by_image(client, world):
    image = upload_file("query.jpg", encode(make_image()))
    response = client.post(reverse("search:search_by_image"), {"image": image, "strictness": "all"})
    shows_nothing_of_alices(response)
    assert [hit.photo.pk for hit in response.context["page"]] == [world.bob_photo.pk]


@case(
    "search:upload", "search:photo_list", "search:album_list", "search:duplicates",
    "search:api_tokens",
)  # fmt: skip
def _lists(client, world):
    for name in ("search:upload", "search:photo_list", "search:album_list", "search:duplicates"):
        shows_nothing_of_alices(client.get(reverse(name)))
    shows_nothing_of_alices(client.get(reverse("search:api_tokens")))


@case("search:album_detail", "search:album_edit")
def _album(client, world):
    for pk in (world.alice_album.pk, GUESS):
        assert client.get(reverse("search:album_detail", args=[pk])).status_code == 404
        for action in ("rename", "share", "unshare", "remove", "delete"):
            url = reverse("search:album_edit", args=[pk, action])
            data = {"name": "Mine", "usernames": "bob", "username": "alice"}
            response = client.post(url, {**data, "photo": world.alice_photo.pk})
            assert response.status_code == 404, (pk, action)
    alice_untouched(world)


@case("search:album_add")
def _album_add(client, world):
    url = reverse("search:album_add")
    for album in (world.alice_album.pk, GUESS):
        response = client.post(url, {"album": album, "photo": world.bob_photo.pk})
        assert response.status_code == 404
    client.post(url, {"album": world.bob_album.pk, "photo": world.alice_photo.pk})
    assert list(world.bob_album.photos.values_list("pk", flat=True)) == [world.bob_photo.pk]
    alice_untouched(world)


@case("search:photos_delete")
def _photos_delete(client, world):
    url = reverse("search:photos_delete")
    for pk in (world.alice_photo.pk, GUESS):
        assert client.get(url, {"photo": pk}).status_code == 404
        assert client.post(url, {"photo": pk}).status_code == 404
        # Alice's photo among Bob's own: nothing at all is deleted.
        assert client.post(url, {"photo": [world.bob_photo.pk, pk]}).status_code == 404
        assert client.post(url, {"photo": world.bob_photo.pk, "keep": pk}).status_code == 404
    assert Photo.objects.filter(pk=world.bob_photo.pk).exists()
    alice_untouched(world)


@case("search:api_token_revoke")
def _token_revoke(client, world):
    for pk in (world.alice_token.pk, GUESS):
        url = reverse("search:api_token_revoke", args=[pk])
        assert client.post(url).status_code == 404
    alice_untouched(world)


@case("search:dashboard", "search:dashboard_action")
def _staff_only(client, world):
    def refused(response) -> bool:
        return response.status_code == 302 and "/admin/login/" in response["Location"]

    assert refused(client.get(reverse("search:dashboard")))
    for action in ("pause", "delete", "retry", "retry-reason", "reembed-all", "switch"):
        url = reverse("search:dashboard_action", args=[action])
        assert refused(client.post(url, {"photo": world.alice_photo.pk, "reason": ""})), action
    forget_active_spec()
    assert not pipeline_is_paused()
    alice_untouched(world)


def test_every_web_url_has_an_isolation_case():
    names = {
        name
        for name, _ in named_urls()
        if not name.startswith("admin:") and not name.startswith("api:")
    }
    missing = sorted(names - set(CASES) - set(PUBLIC))
    assert not missing, f"add a case for {missing} to {__name__} (or to PUBLIC, with why)"
    assert not sorted((set(CASES) | set(PUBLIC)) - names), "a case for a URL that is gone"


@pytest.mark.parametrize("name", sorted(CASES))
def test_bob_reaches_nothing_of_alices(bob_client, world, name):
    CASES[name](bob_client, world)


# Sample values for the admin's URL parameters; a new parameter name fails the test below.
ADMIN_SAMPLES = {
    "app_label": "search",
    "object_id": "1",
    "id": "1",
    "content_type_id": "1",
    "url": "x",
}


def admin_urls() -> list[str]:
    urls = []
    for name, pattern in named_urls():
        if not name.startswith("admin:"):
            continue
        params = list(pattern.pattern.regex.groupindex)
        unknown = [p for p in params if p not in ADMIN_SAMPLES]
        assert not unknown, f"add a sample for {unknown} ({name}) to ADMIN_SAMPLES"
        urls.append(reverse(name, kwargs={p: ADMIN_SAMPLES[p] for p in params}))
    return urls


def test_every_admin_url_refuses_ordinary_users(bob_client, world):
    urls = admin_urls()
    assert len(urls) > 20
    for url in urls:
        if url.rstrip("/").endswith(("/login", "/logout")) or "/jsi18n" in url:
            continue  # the admin's own login page, logout and translations
        for method in (bob_client.get, bob_client.post):
            response = method(url)
            assert response.status_code == 302, (url, response.status_code)
            assert response["Location"].startswith("/admin/login/"), url
    alice_untouched(world)


def test_the_admin_opens_for_staff(client, staff, world):
    client.force_login(staff)
    assert client.get(reverse("admin:index")).status_code == 200
    assert client.get(reverse("search:dashboard")).status_code == 200
