"""Writes of the places concern: the country, region and city of photos with a position.

Ingest asks ``place_fields`` for the place of each item it saves, in the same write as the
rest of its metadata; ``photos_places_reindex`` fills in (or redoes) the library's.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from search.models import Photo
from search.photos.changes import search_choices_changed
from workers.embedding.places import GeocoderError, Place, default_geocoder

logger = logging.getLogger(__name__)

NO_PLACE = {"country_code": "", "country": "", "region": "", "city": ""}
PLACE_FIELDS = tuple(NO_PLACE)


def place_fields(positions: list[tuple[float | None, float | None]]) -> list[dict[str, str]]:
    """The place columns for each (latitude, longitude); empty ones without a position, far
    from any populated place, or when the geocoder cannot load (then ``reindex_places`` can
    fill them in later: a place is never worth losing an embedding for)."""
    located = [i for i, (lat, lon) in enumerate(positions) if lat is not None and lon is not None]
    fields = [dict(NO_PLACE) for _ in positions]
    if not located:
        return fields
    try:
        places = default_geocoder().reverse(
            [(float(positions[i][0]), float(positions[i][1])) for i in located]  # type: ignore[arg-type]
        )
    except GeocoderError:
        logger.exception("places left empty: the geocoder could not load")
        return fields
    except Exception:  # a bug in a best-effort step must not cost the photo its embedding
        logger.exception("places left empty: the geocoder failed")
        return fields
    for i, place in zip(located, places, strict=True):
        if place is not None:
            fields[i] = _columns(place)
    return fields


def _columns(place: Place) -> dict[str, str]:
    return {
        "country_code": place.country_code,
        "country": place.country[:100],
        "region": place.region[:200],
        "city": place.city[:200],
    }


@dataclass(frozen=True)
class PlacesReindexed:
    seen: int  # photos with a position looked up
    changed: int  # rows whose place changed (set, corrected or cleared)


def photos_places_reindex(
    *,
    redo: bool = False,
    batch_size: int = 2000,
    progress: Callable[[int], None] | None = None,
) -> PlacesReindexed:
    """Give every photo with a position its place: those without one, or with ``redo`` all of
    them (after a geocoder update). Batched by id; each batch one statement that writes a row
    only if its position is still the one looked up, so it is safe to run twice and alongside
    ingest. Places left on photos that lost their position are cleared. ``progress`` is called
    with the number of photos of each batch done.
    """
    rows = Photo.objects.filter(latitude__isnull=False, longitude__isnull=False)
    if not redo:
        rows = rows.filter(country_code="")
    seen = changed = 0
    last = 0
    while True:
        batch = list(
            rows.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "latitude", "longitude", *PLACE_FIELDS)[:batch_size]
        )
        if not batch:
            break
        last = batch[-1][0]
        fields = place_fields([(lat, lon) for _, lat, lon, *_ in batch])
        updates = [
            (pk, lat, lon, *(new[name] for name in PLACE_FIELDS))
            for (pk, lat, lon, *old), new in zip(batch, fields, strict=True)
            if tuple(old) != tuple(new[name] for name in PLACE_FIELDS)
        ]
        changed += _places_write(updates)
        seen += len(batch)
        if progress is not None:
            progress(len(batch))
    with transaction.atomic():
        cleared = (
            Photo.objects.filter(latitude__isnull=True)
            .exclude(country_code="")
            .update(updated_at=timezone.now(), **NO_PLACE)
        )
    changed += cleared
    if changed:
        search_choices_changed()
    return PlacesReindexed(seen=seen, changed=changed)


def _places_write(updates: list[tuple]) -> int:
    if not updates:
        return 0
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s)"] * len(updates))
    table = Photo._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {table} AS p
            SET country_code = v.country_code, country = v.country, region = v.region,
                city = v.city, updated_at = %s
            FROM (VALUES {values})
                AS v(id, latitude, longitude, country_code, country, region, city)
            WHERE p.id = v.id::bigint
                AND p.latitude = v.latitude::double precision
                AND p.longitude = v.longitude::double precision
            """,
            [timezone.now(), *(value for row in updates for value in row)],
        )
        return cursor.rowcount
