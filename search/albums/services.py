"""Writes of the albums concern: create, rename, delete, photos in and out, sharing."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction

from search.models import (
    Album,
    Photo,
)
from search.photos.changes import search_choices_changed

# --- albums ---------------------------------------------------------------------------------


class AlbumError(ValueError):
    """An album change that cannot be made; ``str(error)`` says why, for the user."""


def album_create(*, owner, name: str) -> Album:
    name = name.strip()
    if not name:
        raise AlbumError("Give the album a name.")
    try:
        with transaction.atomic():
            return Album.objects.create(owner=owner, name=name)
    except IntegrityError:
        raise AlbumError(f"You already have an album called “{name}”.") from None


def album_rename(*, album: Album, name: str) -> Album:
    name = name.strip()
    if not name:
        raise AlbumError("Give the album a name.")
    # The unique constraint decides, as in album_create: a check before the write would let an
    # album of that name made in between through to the constraint, as an IntegrityError.
    try:
        with transaction.atomic():
            album.name = name
            album.save(update_fields=["name", "updated_at"])
    except IntegrityError:
        album.refresh_from_db(fields=["name", "updated_at"])
        raise AlbumError(f"You already have an album called “{name}”.") from None
    return album


def album_delete(*, album: Album) -> None:
    """Delete the album; its photos stay in their owner's library."""
    album.delete()
    search_choices_changed()  # its photos are no longer visible to those it was shared with


def album_add_photos(*, album: Album, photo_ids: list[int]) -> int:
    """Add photos of the album's owner to it (others' photos are ignored); return how many."""
    photos = list(Photo.objects.filter(owner=album.owner, pk__in=photo_ids).exclude(albums=album))
    album.photos.add(*photos)
    search_choices_changed()
    return len(photos)


def album_remove_photos(*, album: Album, photo_ids: list[int]) -> int:
    photos = list(album.photos.filter(pk__in=photo_ids))
    album.photos.remove(*photos)
    search_choices_changed()
    return len(photos)


def album_share(*, album: Album, usernames: list[str]) -> list:
    """Give the named users read access to the album; raises ``AlbumError`` naming every name
    it cannot be shared with (and then shares with nobody)."""
    User = get_user_model()
    wanted = {name.strip() for name in usernames if name.strip()}
    users = list(
        User.objects.filter(username__in=wanted, is_active=True).exclude(pk=album.owner_id)
    )
    refused = wanted - {user.get_username() for user in users}
    if refused:
        # One answer for a name nobody has, an inactive account and the owner's own name, so
        # that sharing does not tell who has an account.
        raise AlbumError("Cannot share with: " + ", ".join(sorted(refused)))
    album.shared_with.add(*users)
    search_choices_changed()
    return users


def album_unshare(*, album: Album, usernames: list[str]) -> None:
    album.shared_with.remove(*album.shared_with.filter(username__in=usernames))
    search_choices_changed()
