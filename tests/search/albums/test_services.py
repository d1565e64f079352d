"""Album writes: renaming against a concurrent album of the same name, and who may be shared
with."""

import threading

import pytest
from django.db import connection, transaction

from search.albums.services import AlbumError, album_create, album_rename, album_share
from search.models import Album


@pytest.mark.django_db(transaction=True)
def test_a_rename_racing_a_new_album_of_that_name_is_refused_not_a_crash(alice):
    """Another request creates "Taken" while this one renames to it: the rival's row is not
    committed yet when this rename could look for it, so only the constraint can tell."""
    album = album_create(owner=alice, name="Old")
    inserted, release = threading.Event(), threading.Event()

    def rival():
        try:
            with transaction.atomic():
                Album.objects.create(owner=alice, name="Taken")
                inserted.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=rival)
    thread.start()
    assert inserted.wait(10)
    # The rename's write waits on the rival's uncommitted row until the rival commits.
    threading.Timer(0.5, release.set).start()
    try:
        with pytest.raises(AlbumError) as refused:
            album_rename(album=album, name="Taken")
    finally:
        release.set()
        thread.join(10)

    assert str(refused.value) == "You already have an album called “Taken”."
    assert album.name == "Old"
    assert sorted(Album.objects.values_list("name", flat=True)) == ["Old", "Taken"]


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["zed", "carol", "alice"])  # nobody, inactive, the owner
def test_sharing_answers_the_same_for_unknown_inactive_and_oneself(
    alice, bob, django_user_model, name
):
    django_user_model.objects.create_user("carol", password="carol-password-1", is_active=False)
    album = album_create(owner=alice, name="A")

    with pytest.raises(AlbumError) as refused:
        album_share(album=album, usernames=["bob", name])

    assert str(refused.value) == f"Cannot share with: {name}"
    assert not album.shared_with.exists()
