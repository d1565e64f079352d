"""Reads of the albums concern."""

from __future__ import annotations

from django.db.models import Count, F, Q, QuerySet

from search.models import Album, Photo


def albums_visible_to(user) -> QuerySet[Album]:
    """Albums ``user`` owns or that are shared with them (staff: all), with photo counts."""
    albums = (
        Album.objects.all()
        if user.is_staff
        else Album.objects.filter(Q(owner=user) | Q(shared_with=user)).distinct()
    )
    return albums.select_related("owner").annotate(photo_count=Count("photos", distinct=True))


def album_photos(album: Album) -> QuerySet[Photo]:
    """The album's photos, newest taken first and undated ones last, as search orders them."""
    return album.photos.order_by(F("taken_at").desc(nulls_last=True), "-id")
