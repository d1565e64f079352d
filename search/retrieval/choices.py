"""The search filters' choices (cameras, tags, places, albums, uploaders) of each viewer, cached in
Redis until the photos that viewer sees change (``search.photos.changes`` says when)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.contrib.auth import get_user_model
from django.core.cache import cache

from search.albums.selectors import albums_visible_to
from search.models import Album, Photo
from search.photos.changes import CHOICES_GENERATION_KEY, CHOICES_TIMEOUT, viewer_generation_key
from search.photos.selectors import photos_visible_to
from search.places.query import KnownPlace
from search.places.selectors import library_places
from search.tags.selectors import tag_counts_for

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchChoices:
    """What the search filters can offer ``user``: only values found among their photos."""

    cameras: list[str]
    albums: list[Album]
    tags: list[tuple[str, int]]
    owners: list  # staff only: users who uploaded photos
    places: list[KnownPlace] = field(default_factory=list)  # countries first, then cities

    @property
    def countries(self) -> list[KnownPlace]:
        return [place for place in self.places if not place.city]

    @property
    def cities(self) -> list[KnownPlace]:
        return [place for place in self.places if place.city]


_Cached = tuple[list[str], list[tuple[str, int]], list, list[KnownPlace]]


def search_choices_for(*, user, model_id: str) -> SearchChoices:
    cameras, tags, owner_ids, places = _cached_choices(user=user, model_id=model_id)
    User = get_user_model()
    return SearchChoices(
        cameras=cameras,
        albums=list(albums_visible_to(user)),
        tags=tags,
        owners=list(User.objects.filter(pk__in=owner_ids).order_by("username")),
        places=places,
    )


def library_places_for(*, user, model_id: str) -> list[KnownPlace]:
    """The countries and cities of the photos ``user`` may see, from the same cache as the
    filter choices: what a query's words may name (``search.retrieval.places``)."""
    return _cached_choices(user=user, model_id=model_id)[3]


def _cached_choices(*, user, model_id: str) -> _Cached:
    """Camera names, tag counts, (staff) uploader ids and places of the photos ``user`` may
    see.

    Two aggregates over the whole library, 200 ms at 100k photos, on every search page: they
    are cached until the library changes. Without the cache (Redis away) they are computed.
    """
    own_key = viewer_generation_key("staff" if user.is_staff else user.pk)
    try:
        generations = cache.get_many([CHOICES_GENERATION_KEY, own_key])
        key = (
            f"search-choices:2:{generations.get(CHOICES_GENERATION_KEY, 0)}:"
            f"{generations.get(own_key, 0)}:{model_id}:{user.pk}:{int(user.is_staff)}"
        )
        cached = cache.get(key)
    except Exception:
        logger.warning("search choices computed without the cache", exc_info=True)
        return _choices(user=user, model_id=model_id)
    if cached is None:
        cached = _choices(user=user, model_id=model_id)
        try:
            cache.set(key, cached, timeout=CHOICES_TIMEOUT)
        except Exception:
            logger.warning("search choices not cached", exc_info=True)
    return cached


def _choices(*, user, model_id: str) -> _Cached:
    visible = photos_visible_to(user).filter(status=Photo.Status.READY)
    cameras = (
        visible.exclude(camera_model="")
        .order_by("camera_model")
        .values_list("camera_model", flat=True)
        .distinct()
    )
    tags = tag_counts_for(photos_queryset=visible, model_id=model_id)
    owner_ids = []
    if user.is_staff:
        owner_ids = list(Photo.objects.order_by().values_list("owner_id", flat=True).distinct())
    return list(cameras[:200]), list(tags[:300]), owner_ids, library_places(visible)
