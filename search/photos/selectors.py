"""Reads of the photos concern: who sees which photos, lists, processing states."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Q, QuerySet

from search.models import Album, Photo

if TYPE_CHECKING:
    pass


def photos_visible_to(user) -> QuerySet[Photo]:
    """Photos ``user`` may see: their own and those in albums shared with them; staff see all."""
    return Photo.objects.filter(visibility(user))


def visibility(user, prefix: str = "") -> Q:
    if user.is_staff:
        return Q()
    own = Q(**{f"{prefix}owner": user})
    # Most users have no shared albums; a plain owner condition keeps the query plan simple
    # enough for the planner to walk the HNSW index.
    if not Album.objects.filter(shared_with=user).exists():
        return own
    shared = Album.photos.through.objects.filter(album__shared_with=user).values("photo_id")
    return own | Q(**{f"{prefix}pk__in": shared})


def photo_list_for(*, user):
    """The user's own photos, newest first."""
    return Photo.objects.filter(owner=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class PhotoState:
    id: int
    filename: str
    status: str  # a Photo.Status value
    failure_reason: str
    has_thumbnail: bool

    @classmethod
    def of(cls, photo: Photo) -> PhotoState:
        return cls(
            id=photo.pk,
            filename=photo.original_filename,
            status=photo.status,
            failure_reason=photo.failure_reason,
            has_thumbnail=bool(photo.thumbnail),
        )


def photo_states_for(*, user, photo_ids: Iterable[int]) -> list[PhotoState]:
    """Where processing stands for those of ``photo_ids`` that ``user`` owns, in id order; the
    others are left out without a word. One query."""
    rows = (
        Photo.objects.filter(owner=user, pk__in=list(photo_ids))
        .order_by("pk")
        .values_list("pk", "original_filename", "status", "failure_reason", "thumbnail")
    )
    return [
        PhotoState(
            id=pk,
            filename=filename,
            status=status,
            failure_reason=reason,
            has_thumbnail=bool(thumbnail),
        )
        for pk, filename, status, reason, thumbnail in rows
    ]


def photos_owned_by(*, user, photo_ids: Sequence[int]) -> list[Photo] | None:
    """The user's photos with these ids, in that order; None unless every one is theirs."""
    photos = Photo.objects.filter(owner=user).in_bulk(photo_ids)
    if len(photos) != len(set(photo_ids)):
        return None
    return [photos[pk] for pk in photo_ids]


def photo_detail_for(*, user, pk: int) -> Photo:
    """One photo ``user`` may see, with its owner; raises ``Photo.DoesNotExist`` otherwise."""
    return photos_visible_to(user).select_related("owner").get(pk=pk)
