"""Photos taken in real places: demo scenes as JPEGs with GPS EXIF, as a phone writes it.

Used by the places tests (in-process and in the browser) so that the real geocoder, on its
real GeoNames data, names their places.
"""

from __future__ import annotations

from PIL import Image

from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, upload_file
from workers.embedding.demo.places import DEMO_PLACES, exif_with_position
from workers.embedding.demo.scenes import Scene, render

# What each test photo shows, and where it was taken (names of DEMO_PLACES; None: no GPS).
PLACED = [
    ("red", "circle", "lisbon"),
    ("blue", "star", "lisbon"),
    ("green", "square", "lisbon-belem"),
    ("yellow", "circle", "porto"),
    ("red", "star", "paris"),
    ("blue", "circle", "nice"),
    ("green", "star", "new-york"),
    ("yellow", "square", None),
]


def placed_jpeg(colour: str, shape: str, place: str | None, *, seed: int = 0) -> bytes:
    picture = Scene(
        shape=shape,
        colour=colour,
        count=1,
        size="large",
        position="middle",
        background="white",
        pattern="plain",
        layout_seed=seed,
    )
    exif = Image.Exif()
    if place is not None:
        latitude, longitude, _, _ = DEMO_PLACES[place]
        exif = exif_with_position(exif, latitude, longitude)
    return encode(render(picture), quality=92, exif=exif.tobytes())


def upload_placed(owner) -> dict[str, Photo]:
    """Upload ``PLACED`` for ``owner``; returns the photos by "colour-shape"."""
    photos = {}
    for i, (colour, shape, place) in enumerate(PLACED):
        name = f"{colour}-{shape}-{place or 'nowhere'}.jpg"
        data = placed_jpeg(colour, shape, place, seed=i)
        photos[f"{colour}-{shape}"] = photo_create(owner=owner, file=upload_file(name, data)).photo
    return photos
