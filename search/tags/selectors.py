"""Reads of the tags concern: a photo's tags, a page's tag names, tag counts for filters."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from django.db.models import Count, QuerySet

from search.models import Photo, PhotoTag

if TYPE_CHECKING:
    pass


def photo_tags_for(*, photo: Photo | int, model_id: str) -> list[PhotoTag]:
    """The photo's zero-shot tags under ``model_id`` (usually ``get_engine().model_id``), most
    probable first. Each tag's ``score`` is its probability among the tags of its group.

    Empty while the photo has not been embedded by that model. Does not check who may see the
    photo: the caller has already decided that.
    """
    return list(PhotoTag.objects.filter(photo=photo, model_id=model_id).order_by("-score", "name"))


def photo_tag_names_for(
    *, photo_ids: Iterable[int], model_id: str, per_photo: int = 5
) -> dict[int, list[str]]:
    """The names of the most probable tags under ``model_id`` of each of ``photo_ids``, at
    most ``per_photo`` each, most probable first: one query for a whole page of photos. Photos
    without tags are absent. Does not check who may see the photos."""
    names: dict[int, list[str]] = {}
    rows = (
        PhotoTag.objects.filter(photo_id__in=list(photo_ids), model_id=model_id)
        .order_by("photo_id", "-score", "name")
        .values_list("photo_id", "name")
    )
    for photo_id, name in rows:
        photo_names = names.setdefault(photo_id, [])
        if len(photo_names) < per_photo:
            photo_names.append(name)
    return names


def tag_counts_for(*, photos_queryset: QuerySet[Photo], model_id: str) -> list[tuple[str, int]]:
    """Every tag name given to the photos of ``photos_queryset`` under ``model_id``, with how
    many of those photos have it, sorted by name: the choices of a tag filter.

    ``photos_queryset`` is whatever the user may see (their photos, shared albums...), as the
    caller decides; one aggregate query.
    """
    return list(
        PhotoTag.objects.filter(model_id=model_id, photo__in=photos_queryset.values("pk"))
        .order_by("name")
        .values("name")
        .annotate(photos=Count("id"))
        .values_list("name", "photos")
    )
