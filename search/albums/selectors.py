"""Reads of the albums concern."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.models import Count, Q, QuerySet

from search.models import Album

if TYPE_CHECKING:
    pass


def albums_visible_to(user) -> QuerySet[Album]:
    """Albums ``user`` owns or that are shared with them (staff: all), with photo counts."""
    albums = (
        Album.objects.all()
        if user.is_staff
        else Album.objects.filter(Q(owner=user) | Q(shared_with=user)).distinct()
    )
    return albums.select_related("owner").annotate(photo_count=Count("photos", distinct=True))
