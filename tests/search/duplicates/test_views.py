"""The duplicates page, and deleting photos from it: only ever the owner's, files after commit."""

import pytest
from django.urls import reverse

from search.evaluation.search import result_ids
from search.models import NearDuplicatePair, Photo
from search.photos.services import photo_create, photos_delete
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from tests.search.duplicates.test_selectors import pair
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded(alice, bob):
    """Alice's four embedded photos and Bob's one, with Alice's first three in one group."""
    colours = ["red", "green", "blue", "black"]
    photos = {
        f"{colour}.jpg": photo_create(
            owner=alice, file=upload_file(f"{colour}.jpg", encode(make_image(color=colour)))
        ).photo
        for colour in colours
    }
    photos["bob.jpg"] = photo_create(
        owner=bob, file=upload_file("bob.jpg", encode(make_image(color="pink")))
    ).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos.values()}
    model_id = get_engine().model_id
    pair(photos["red.jpg"], photos["green.jpg"], 0.004, model_id=model_id)
    pair(photos["green.jpg"], photos["blue.jpg"], 0.02, model_id=model_id)
    return {name: Photo.objects.get(pk=photo.pk) for name, photo in photos.items()}


def stored_files(photo: Photo) -> list[str]:
    return [field.name for field in (photo.file, photo.thumbnail, photo.preview)]


def existing(names: list[str]) -> list[bool]:
    from django.core.files.storage import default_storage

    return [default_storage.exists(name) for name in names]


@pytest.mark.parametrize("url", ["/duplicates/", "/photos/delete/?photo=1"])
def test_duplicate_pages_need_a_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert "/login/" in response["Location"]


def test_page_shows_the_group_side_by_side_with_what_tells_copies_apart(
    alice_client, embedded, settings
):
    response = alice_client.get(reverse("search:duplicates"))

    page = response.content.decode()
    assert response.status_code == 200
    group = [embedded[name] for name in ("red.jpg", "green.jpg", "blue.jpg")]
    assert result_ids(page) == sorted(
        (photo.pk for photo in group), key=lambda pk: -Photo.objects.get(pk=pk).size_bytes
    )
    for photo in group:
        assert f'alt="{photo.original_filename}"' in page
    assert "black.jpg" not in page and "bob.jpg" not in page
    assert page.count("320 \u00d7 240 px") == 3
    assert page.count("Keep this, delete 2 others") == 3
    assert 'href="/duplicates/"' in page  # the navigation link
    default = settings.MEDIASEARCH_DUPLICATE_DISTANCE
    assert f'<input type="number" name="distance" value="{default}"' in page


def test_the_distance_narrows_and_widens_the_groups(alice_client, embedded, settings):
    narrow = alice_client.get(reverse("search:duplicates"), {"distance": "0.01"})
    assert sorted(result_ids(narrow.content.decode())) == [
        embedded["red.jpg"].pk,
        embedded["green.jpg"].pk,
    ]

    too_wide = alice_client.get(reverse("search:duplicates"), {"distance": "1.5"})
    page = too_wide.content.decode()
    widest = settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE
    assert f"Ensure this value is less than or equal to {widest}." in page
    assert len(result_ids(page)) == 3  # the default distance instead


def test_other_users_and_staff_see_only_their_own_groups(client, bob, staff, embedded):
    for user in (bob, staff):
        client.force_login(user)
        page = client.get(reverse("search:duplicates")).content.decode()
        assert result_ids(page) == []
        assert "No near-duplicates" in page


def test_nobody_can_see_or_delete_another_users_photos(client, bob, embedded):
    client.force_login(bob)
    alice_photo = embedded["red.jpg"]
    files = stored_files(alice_photo) + stored_files(embedded["bob.jpg"])
    url = reverse("search:photos_delete")

    assert client.get(url, {"photo": alice_photo.pk}).status_code == 404
    assert client.post(url, {"photo": [alice_photo.pk]}).status_code == 404
    # One of his own among them: still nothing is deleted.
    both = {"photo": [embedded["bob.jpg"].pk, alice_photo.pk]}
    assert client.post(url, both).status_code == 404
    assert (
        client.post(url, {"photo": [embedded["bob.jpg"].pk], "keep": alice_photo.pk}).status_code
        == 404
    )

    assert Photo.objects.count() == 5
    assert existing(files) == [True] * 6


def test_keep_one_asks_first_then_deletes_the_others_and_their_files_after_commit(
    alice_client, embedded, django_capture_on_commit_callbacks
):
    keep, others = embedded["red.jpg"], [embedded["green.jpg"], embedded["blue.jpg"]]
    untouched = [keep, embedded["black.jpg"], embedded["bob.jpg"]]
    query = {
        "keep": keep.pk,
        "photo": [photo.pk for photo in others],
        "next": "/duplicates/?distance=0.02",
    }

    confirm = alice_client.get(reverse("search:photos_delete"), query)
    assert confirm.status_code == 200
    assert "Delete 2 photos?" in confirm.content.decode()
    assert Photo.objects.count() == 5

    doomed = [name for photo in others for name in stored_files(photo)]
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = alice_client.post(reverse("search:photos_delete"), query)
    assert response.status_code == 302
    assert response["Location"] == "/duplicates/?distance=0.02"
    assert not Photo.objects.filter(pk__in=[photo.pk for photo in others]).exists()
    assert NearDuplicatePair.objects.count() == 0  # both pairs had a deleted photo
    assert existing(doomed) == [True] * 6  # the transaction is still open

    for callback in callbacks:
        callback()
    assert existing(doomed) == [False] * 6
    assert sorted(Photo.objects.values_list("pk", flat=True)) == sorted(p.pk for p in untouched)
    assert existing([name for photo in untouched for name in stored_files(photo)]) == [True] * 9

    page = alice_client.get(response["Location"]).content.decode()
    assert "Deleted 2 photos; kept red.jpg." in page


def test_delete_one_photo_leaves_the_rest_of_its_group(alice_client, embedded):
    target = embedded["blue.jpg"]
    response = alice_client.post(
        reverse("search:photos_delete"),
        {"photo": [target.pk], "next": "https://elsewhere.example/"},
    )
    assert response["Location"] == reverse("search:duplicates")  # never off the site
    assert not Photo.objects.filter(pk=target.pk).exists()
    assert Photo.objects.count() == 4
    assert NearDuplicatePair.objects.count() == 1


def test_deleting_needs_the_csrf_token(alice, embedded):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    response = client.post(reverse("search:photos_delete"), {"photo": [embedded["red.jpg"].pk]})
    assert response.status_code == 403
    assert Photo.objects.count() == 5


def test_photos_delete_deletes_only_the_owners_photos(alice, embedded):
    deleted = photos_delete(
        owner=alice, photo_ids=[embedded["black.jpg"].pk, embedded["bob.jpg"].pk]
    )
    assert deleted == [embedded["black.jpg"].pk]
    assert Photo.objects.filter(pk=embedded["bob.jpg"].pk).exists()
