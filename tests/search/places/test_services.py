"""Places written at ingest and by reindex_places, with the real geocoder and database."""

import io
import logging

import pytest
from django.core.management import call_command

from search.models import Embedding, Photo
from search.places.services import photos_places_reindex
from tests.pipeline import embed_waiting
from tests.places_photos import upload_placed
from workers.embedding import places as engine_places

pytestmark = pytest.mark.django_db

PLACE = ("country_code", "country", "region", "city")


def places_of(photos):
    return {
        key: tuple(getattr(Photo.objects.get(pk=photo.pk), name) for name in PLACE)
        for key, photo in photos.items()
    }


EXPECTED = {
    "red-circle": ("PT", "Portugal", "Lisbon", "Lisbon"),
    "blue-star": ("PT", "Portugal", "Lisbon", "Lisbon"),
    "green-square": ("PT", "Portugal", "Lisbon", "Lisbon"),
    "yellow-circle": ("PT", "Portugal", "Porto", "Porto"),
    "red-star": ("FR", "France", "Île-de-France", "Paris"),
    "blue-circle": ("FR", "France", "Provence-Alpes-Côte d'Azur", "Nice"),
    "green-star": ("US", "United States", "New York", "Manhattan"),
    "yellow-square": ("", "", "", ""),
}


def test_ingest_names_the_place_of_every_photo_with_a_position(alice):
    photos = upload_placed(alice)

    assert set(embed_waiting().values()) == {Photo.Status.READY}

    assert places_of(photos) == EXPECTED


def test_a_geocoder_that_cannot_load_leaves_places_empty_and_loses_nothing_else(
    alice, monkeypatch, caplog
):
    def broken(self):
        raise engine_places.GeocoderError("could not load the GeoNames data: gone")

    monkeypatch.setattr(engine_places.Geocoder, "load", broken)
    photos = upload_placed(alice)

    with caplog.at_level(logging.ERROR):
        assert set(embed_waiting().values()) == {Photo.Status.READY}

    assert set(places_of(photos).values()) == {("", "", "", "")}
    assert Embedding.objects.filter(photo__owner=alice).count() == len(photos)
    assert Photo.objects.filter(owner=alice, latitude__isnull=False).count() == 7
    assert "the geocoder could not load" in caplog.text

    # Once the geocoder works again, reindex_places fills them in.
    monkeypatch.undo()
    out = io.StringIO()
    call_command("reindex_places", stdout=out, verbosity=0)

    assert places_of(photos) == EXPECTED
    assert "Looked up 7 photos with a position; 7 places changed." in out.getvalue()


def test_reindex_fills_in_corrects_and_clears_and_a_second_run_changes_nothing(alice):
    photos = upload_placed(alice)
    embed_waiting()
    lisbon, porto, nowhere = photos["red-circle"], photos["yellow-circle"], photos["yellow-square"]
    Photo.objects.filter(pk=lisbon.pk).update(country_code="", country="", region="", city="")
    Photo.objects.filter(pk=porto.pk).update(city="Gaia")  # stale: only --redo looks again
    Photo.objects.filter(pk=nowhere.pk).update(country_code="ES", country="Spain", city="Vigo")

    first = photos_places_reindex()
    second = photos_places_reindex()

    assert (first.seen, first.changed) == (1, 2)  # Lisbon filled in, "Vigo" cleared
    assert (second.seen, second.changed) == (0, 0)
    assert Photo.objects.get(pk=porto.pk).city == "Gaia"

    redone = photos_places_reindex(redo=True, batch_size=3)  # several batches

    assert (redone.seen, redone.changed) == (7, 1)
    assert places_of(photos) == EXPECTED


def test_reindex_never_writes_a_place_over_a_position_that_changed_meanwhile(alice, monkeypatch):
    photos = upload_placed(alice)
    embed_waiting()
    lisbon = photos["red-circle"]
    Photo.objects.filter(pk=lisbon.pk).update(country_code="", city="")
    seen = []

    def moved(batch: int) -> None:
        seen.append(batch)

    # The photo moves to Porto between the read of its position and the write of its place:
    # a position written by ingest meanwhile is newer than the one looked up.
    from search.places import services

    looked_up = services.place_fields

    def place_fields_then_move(positions):
        fields = looked_up(positions)
        Photo.objects.filter(pk=lisbon.pk).update(latitude=41.1408, longitude=-8.6112)
        return fields

    monkeypatch.setattr(services, "place_fields", place_fields_then_move)
    result = photos_places_reindex(progress=moved)

    assert (result.seen, result.changed, seen) == (1, 0, [1])
    assert Photo.objects.get(pk=lisbon.pk).city == ""


def test_a_video_gets_the_place_of_its_iso6709_location(alice):
    from tests.search.ingest.test_videos import embed_video, uploaded_video

    # Porto's Ribeira, as a phone writes it in the MP4's ©xyz / location tag.
    video = uploaded_video(alice, metadata={"location": "+41.1408-008.6112/"})

    assert embed_video(video) == Photo.Status.READY

    video.refresh_from_db()
    assert (video.country_code, video.country, video.region, video.city) == (
        "PT",
        "Portugal",
        "Porto",
        "Porto",
    )
