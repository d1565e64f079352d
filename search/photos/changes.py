"""Telling the caches that what some people see has changed.

Search-filter choices (``search.retrieval.choices``) are cached per viewer under generations
kept in Redis; every write that changes which photos, tags or albums someone sees bumps the
generations of exactly those people, once its transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from functools import partial

from django.core.cache import cache
from django.db import transaction

from search.models import Album, Photo

logger = logging.getLogger(__name__)


# Cached choices are stored under the generations they were computed in, so every process sees
# a change at once: the whole library's (bumped when tags or albums change) and the reader's own
# (bumped when photos they see become ready or go away; staff share one, as they see every
# photo). One person's upload leaves everyone else's choices cached. The timeout only bounds how
# stale they get when a bump is lost.
CHOICES_GENERATION_KEY = "search-choices-generation"
CHOICES_TIMEOUT = 600


def search_choices_changed(*, photo_ids: Iterable[int] | None = None) -> None:
    """Photos became ready or went away, tags or albums changed: recompute filter choices once
    the change commits (at once outside a transaction). A bump before the commit would let
    another process cache the old choices under the new generation.

    With ``photo_ids``, only the choices of people who see those photos are recomputed; call it
    before the photos are deleted, as it looks up who sees them.
    """
    if photo_ids is None:
        transaction.on_commit(forget_search_choices)
        return
    keys = [viewer_generation_key("staff")]
    keys += [viewer_generation_key(pk) for pk in _viewers_of(list(photo_ids))]
    transaction.on_commit(partial(_bump_generations, keys))


def forget_search_choices() -> None:
    """Make every process recompute everyone's filter choices from now on."""
    _bump_generations([CHOICES_GENERATION_KEY])


def _viewers_of(photo_ids: list[int]) -> set[int]:
    """Ids of the people (besides staff) who see any of these photos: owners, and those their
    albums are shared with."""
    owners = Photo.objects.filter(pk__in=photo_ids).values_list("owner_id", flat=True)
    shared = Album.shared_with.through.objects.filter(album__photos__in=photo_ids)
    return set(owners) | set(shared.values_list("user_id", flat=True))


def viewer_generation_key(viewer: int | str) -> str:
    """A user's id, or ``"staff"`` for everyone who sees every photo."""
    return f"{CHOICES_GENERATION_KEY}:{viewer}"


def _bump_generations(keys: list[str]) -> None:
    try:
        for key in keys:
            cache.add(key, 0, timeout=None)
            cache.incr(key)
    except Exception:
        logger.warning("search choices may stay stale for %s s", CHOICES_TIMEOUT, exc_info=True)
