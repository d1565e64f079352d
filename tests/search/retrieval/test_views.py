"""The search page's result grid: alt text from tags (one query a page), keyboard hooks."""

import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from search.albums.services import album_add_photos, album_create, album_share
from search.models import Photo, PhotoTag
from search.photos.changes import forget_search_choices
from search.photos.services import photo_create, photos_delete
from search.tags.selectors import photo_tag_names_for, photo_tags_for
from tests.conftest import encode, upload_file
from tests.pipeline import embed_waiting
from tests.search.tags.test_services import ready_photo, ready_photos, scene_photo
from workers.active_engine import get_engine
from workers.embedding.demo.scenes import Scene, render

pytestmark = pytest.mark.django_db

SHAPES = [("star", "red"), ("circle", "blue"), ("square", "green"), ("triangle", "yellow")]


def alt_texts(page: str) -> dict[str, str]:
    """title (the file name) → alt text of each result tile."""
    tiles = re.findall(
        r'<a class="tile-link" href="[^"]+" title="([^"]+)">\s*<img [^>]*alt="([^"]*)"', page
    )
    return dict(tiles)


def tag_queries(captured) -> list[str]:
    return [query["sql"] for query in captured if 'FROM "search_phototag"' in query["sql"]]


def search_all(client):
    return client.get(reverse("search:home"), {"q": "a shape", "strictness": "all"})


def test_result_tiles_describe_photos_by_their_tags(alice_client, alice):
    star, bare = ready_photos(
        alice,
        dict(shape="star", colour="red"),
        dict(shape="circle", colour="blue", name="untagged.jpg"),
    )
    PhotoTag.objects.filter(photo=bare).delete()

    page = search_all(alice_client).text

    tags = [tag.name for tag in photo_tags_for(photo=star, model_id=get_engine().model_id)]
    assert set(tags) == {"red", "star", "plain", "white background"}
    assert alt_texts(page) == {"red-star.jpg": ", ".join(tags), "untagged.jpg": "untagged.jpg"}


def test_tags_of_a_whole_page_come_in_one_query(alice_client, alice):
    ready_photo(alice, shape="star", colour="red")
    forget_search_choices()  # as the commit would (the test's transaction never commits)
    with CaptureQueriesContext(connection) as one:
        search_all(alice_client)
    ready_photos(alice, *(dict(shape=shape, colour=colour) for shape, colour in SHAPES[1:]))
    forget_search_choices()

    with CaptureQueriesContext(connection) as four:
        page = search_all(alice_client).text

    assert len(alt_texts(page)) == 4
    # The filter's tag choices read tags too: one query for those, one for the tiles.
    assert len(tag_queries(four)) == len(tag_queries(one)) == 2
    assert len(four) == len(one)


def filter_choices(client) -> dict[str, list[str]]:
    form = search_all(client).context["form"]
    return {
        name: [value for value, _ in form.fields[name].choices[1:]] for name in ("tag", "album")
    }


def test_filter_choices_are_cached_until_the_library_changes(
    alice_client, alice, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        ready_photo(alice, shape="star", colour="red")
    first = filter_choices(alice_client)
    assert "red" in first["tag"] and "blue" not in first["tag"]

    with CaptureQueriesContext(connection) as again:
        assert filter_choices(alice_client) == first
    assert len(tag_queries(again)) == 1  # the tiles' tags; the choices came from the cache

    with django_capture_on_commit_callbacks(execute=True):
        blue = ready_photo(alice, shape="square", colour="blue")
    assert "blue" in filter_choices(alice_client)["tag"]

    album = album_create(owner=alice, name="Trip")  # albums are read fresh every time
    assert filter_choices(alice_client)["album"] == [album.pk]
    with django_capture_on_commit_callbacks(execute=True):
        photos_delete(owner=alice, photo_ids=[blue.pk])
    assert "blue" not in filter_choices(alice_client)["tag"]


def test_a_change_recomputes_only_the_choices_of_those_who_see_it(
    client, alice, bob, staff, django_capture_on_commit_callbacks
):
    def choices_of(user):
        client.force_login(user)
        with CaptureQueriesContext(connection) as queries:
            tags = filter_choices(client)["tag"]
        return tags, len(tag_queries(queries)) == 2  # the choices' query besides the tiles'

    with django_capture_on_commit_callbacks(execute=True):
        ready_photo(alice, shape="star", colour="red")
    assert choices_of(alice)[0] == choices_of(staff)[0] != []
    with django_capture_on_commit_callbacks(execute=True):
        blue = ready_photo(bob, shape="square", colour="blue")

    assert choices_of(alice) == (choices_of(alice)[0], False)  # bob's photo: still cached
    assert "blue" not in choices_of(alice)[0]
    assert "blue" in choices_of(staff)[0] and "blue" in choices_of(bob)[0]

    with django_capture_on_commit_callbacks(execute=True):
        album = album_create(owner=bob, name="Shared")
        album_add_photos(album=album, photo_ids=[blue.pk])
        album_share(album=album, usernames=["alice"])
    assert "blue" in choices_of(alice)[0]
    with django_capture_on_commit_callbacks(execute=True):
        photos_delete(owner=bob, photo_ids=[blue.pk])  # seen by alice through the album
    assert "blue" not in choices_of(alice)[0]
    assert "blue" not in choices_of(staff)[0]


def test_tag_names_are_the_most_probable_first_and_capped(alice):
    photo = ready_photo(alice, shape="star", colour="red")
    model_id = get_engine().model_id
    every = [tag.name for tag in photo_tags_for(photo=photo, model_id=model_id)]

    assert photo_tag_names_for(photo_ids=[photo.pk], model_id=model_id) == {photo.pk: every}
    assert photo_tag_names_for(photo_ids=[photo.pk], model_id=model_id, per_photo=2) == {
        photo.pk: every[:2]
    }
    assert photo_tag_names_for(photo_ids=[photo.pk], model_id="another/model") == {}


def test_similar_photos_on_a_photo_page_have_alt_text_from_tags(alice_client, alice):
    star_image = render(Scene("star", "red", 1, "large", "middle", "white", "plain", 0), (320, 320))
    star = scene_photo(alice, shape="star", colour="red")
    copy = photo_create(owner=alice, file=upload_file("copy.jpg", encode(star_image, quality=60)))
    copy = copy.photo
    assert embed_waiting() == {star.pk: Photo.Status.READY, copy.pk: Photo.Status.READY}

    page = alice_client.get(reverse("search:photo_detail", args=[star.pk])).text

    tags = photo_tag_names_for(photo_ids=[copy.pk], model_id=get_engine().model_id)
    assert alt_texts(page) == {"copy.jpg": ", ".join(tags[copy.pk])}
    assert '<script src="/static/js/grid.js" defer></script>' in page


def test_the_result_grid_is_ready_for_the_keyboard(alice_client, alice):
    ready_photo(alice, shape="star", colour="red")

    page = search_all(alice_client).text

    assert '<ol class="grid" aria-label="Results" data-keyboard-grid>' in page
    assert 'id="keys-help" hidden' in page  # shown by the script, which makes it true
    assert 'loading="lazy"' in page
    for script in ("search.js", "grid.js"):
        assert f'<script src="/static/js/{script}" defer></script>' in page
    assert "<script>" not in page
