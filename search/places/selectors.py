"""Reads of the places concern: which countries and cities a set of photos was taken in."""

from __future__ import annotations

from django.db.models import Count, QuerySet

from search.models import Photo
from search.places.query import KnownPlace

# The filter lists stay usable, and the query matching quick, however travelled the library.
MAX_PLACES = 2000


def library_places(photos: QuerySet[Photo]) -> list[KnownPlace]:
    """The countries (``city`` empty) and cities of ``photos``, each with its photo count, the
    most photographed first; one aggregate query."""
    rows = list(
        photos.exclude(country_code="")
        .order_by()
        .values("country_code", "country", "city")
        .annotate(count=Count("id"))
        .order_by("-count", "country", "city")[:MAX_PLACES]
    )
    countries: dict[str, KnownPlace] = {}
    for row in rows:
        code = row["country_code"]
        seen = countries.get(code)
        countries[code] = KnownPlace(
            country_code=code,
            country=row["country"],
            count=(seen.count if seen else 0) + row["count"],
        )
    cities = [
        KnownPlace(
            country_code=row["country_code"],
            country=row["country"],
            city=row["city"],
            count=row["count"],
        )
        for row in rows
        if row["city"]
    ]
    ordered = sorted(countries.values(), key=lambda place: (-place.count, place.country))
    return ordered + cities
