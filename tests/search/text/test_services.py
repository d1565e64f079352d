"""Reading a photo's text after its vector is stored: real RapidOCR and tesseract, real
PostgreSQL; failures of every kind fail the reading alone."""

import stat
from datetime import timedelta

import pytest
from django.utils import timezone
from PIL import Image, ImageDraw, ImageFont

from search.models import Embedding, Photo, PhotoText, Pipeline
from search.photos.services import photo_create
from search.retrieval.query import Strictness
from search.retrieval.selectors import photo_search
from search.text.selectors import ocr_stats, text_matches, text_terms
from search.text.services import (
    ocr_set_enabled,
    photo_text_read,
    text_readings_request,
    text_readings_requeue,
)
from tests.conftest import encode, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.ocr import TesseractReader

pytestmark = pytest.mark.django_db


@pytest.fixture
def ocr_on(settings):
    settings.MEDIASEARCH_OCR_ENABLED = True
    settings.MEDIASEARCH_OCR_ENGINE = "rapidocr"
    return settings


def sign_jpeg(lines: tuple[str, ...] = ("HOTEL", "MIRAMAR")) -> bytes:
    image = Image.new("RGB", (640, 360), (70, 110, 160))
    draw = ImageDraw.Draw(image)
    draw.rectangle((30, 40, 610, 80 + 90 * len(lines)), fill=(240, 240, 230))
    for row, text in enumerate(lines):
        draw.text(
            (50, 60 + 90 * row), text, fill=(20, 20, 20), font=ImageFont.load_default(size=64)
        )
    return encode(image, quality=92)


def ready_photo(owner, data: bytes, name: str = "sign.jpg") -> Photo:
    photo = photo_create(owner=owner, file=upload_file(name, data)).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    photo.refresh_from_db()
    return photo


def failing_program(tmp_path, body: str) -> str:
    program = tmp_path / "tesseract"
    program.write_text(f"#!/bin/sh\n{body}\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    return str(program)


def test_a_ready_photo_has_its_text_read_and_indexed(ocr_on, alice):
    photo = ready_photo(alice, sign_jpeg())
    row = PhotoText.objects.get(photo=photo)
    assert row.status == PhotoText.Status.PENDING  # asked for once the vector was stored

    assert photo_text_read(photo_id=photo.pk) == PhotoText.Status.DONE
    row.refresh_from_db()
    assert row.engine == "rapidocr" and row.folded == "hotel miramar"
    assert [word["text"] for word in row.words] == ["HOTEL", "MIRAMAR"]
    assert all(0 <= v <= 1 for word in row.words for v in word["box"])
    assert row.words[0]["box"][3] <= row.words[1]["box"][1] + 0.01  # one line above the other
    assert row.ms > 0 and row.attempts == 1

    found = text_matches(terms=text_terms(text="miramar"), photos=Photo.objects.all())
    assert list(found) == [photo.pk] and found[photo.pk].strength == 1.0

    # Safe to run twice: a reading already done is not taken again.
    assert photo_text_read(photo_id=photo.pk) is None
    row.refresh_from_db()
    assert row.attempts == 1 and row.status == PhotoText.Status.DONE


def test_an_engine_that_crashes_fails_only_the_reading(ocr_on, alice, tmp_path):
    photo = ready_photo(alice, sign_jpeg())
    vectors_before = list(Embedding.objects.filter(photo=photo).values_list("vector", flat=True))
    crashing = TesseractReader(
        program=failing_program(tmp_path, 'echo "Segmentation fault" >&2; kill -SEGV $$')
    )

    assert photo_text_read(photo_id=photo.pk, reader=crashing) == PhotoText.Status.FAILED
    row = PhotoText.objects.get(photo=photo)
    assert row.status == PhotoText.Status.FAILED
    assert row.failure_reason.startswith("tesseract failed")
    assert row.words == [] and row.search is None
    photo.refresh_from_db()
    assert photo.status == Photo.Status.READY and photo.failure_reason == ""
    vectors_after = list(Embedding.objects.filter(photo=photo).values_list("vector", flat=True))
    assert [list(v) for v in vectors_after] == [list(v) for v in vectors_before]
    # Still found by CLIP.
    outcome = photo_search(user=alice, text="a sign", strictness=Strictness.ALL)
    assert [hit.photo.pk for hit in outcome.hits] == [photo.pk]


def test_a_reading_past_the_time_limit_fails_alone(ocr_on, alice, tmp_path):
    ocr_on.MEDIASEARCH_OCR_TIME_LIMIT = 1
    photo = ready_photo(alice, sign_jpeg())
    hanging = TesseractReader(program=failing_program(tmp_path, "sleep 30"))
    assert photo_text_read(photo_id=photo.pk, reader=hanging) == PhotoText.Status.FAILED
    row = PhotoText.objects.get(photo=photo)
    assert row.failure_reason == "reading the text took longer than the time limit"
    assert Photo.objects.get(pk=photo.pk).status == Photo.Status.READY


def test_a_reading_that_keeps_killing_its_worker_is_given_up(ocr_on, alice):
    photo = ready_photo(alice, sign_jpeg())
    # Three earlier attempts were claimed and never finished (their worker died).
    PhotoText.objects.filter(photo=photo).update(attempts=3)
    assert photo_text_read(photo_id=photo.pk) == PhotoText.Status.FAILED
    row = PhotoText.objects.get(photo=photo)
    assert row.failure_reason == "reading the text stopped its worker 3 times"


def test_a_missing_original_fails_the_reading_with_a_reason(ocr_on, alice):
    photo = ready_photo(alice, sign_jpeg())
    photo.file.storage.delete(photo.file.name)
    assert photo_text_read(photo_id=photo.pk) == PhotoText.Status.FAILED
    assert PhotoText.objects.get(photo=photo).failure_reason
    assert Photo.objects.get(pk=photo.pk).status == Photo.Status.READY


def test_ocr_turned_off_asks_for_nothing(ocr_on, alice):
    ocr_set_enabled(enabled=False)
    photo = ready_photo(alice, sign_jpeg())
    assert not PhotoText.objects.filter(photo=photo).exists()
    assert text_readings_request(photo_ids=[photo.pk]) == 0
    assert text_readings_requeue() == 0
    assert ocr_stats().enabled is False

    # Back on: the sweeper asks for the readings skipped meanwhile.
    ocr_set_enabled(enabled=True)
    assert Pipeline.objects.get(pk=1).ocr_enabled
    assert text_readings_requeue() == 1
    assert PhotoText.objects.get(photo=photo).status == PhotoText.Status.PENDING


def test_the_setting_turns_ocr_off(settings, alice):
    settings.MEDIASEARCH_OCR_ENABLED = False
    photo = ready_photo(alice, sign_jpeg())
    assert not PhotoText.objects.filter(photo=photo).exists()
    assert ocr_stats().enabled is False and ocr_stats().setting_enabled is False


def test_stats_count_readings(ocr_on, alice):
    photo = ready_photo(alice, sign_jpeg())
    photo_text_read(photo_id=photo.pk)
    stats = ocr_stats()
    assert (stats.done, stats.failed, stats.pending, stats.with_text) == (1, 0, 0, 1)
    assert stats.read_last_hour == 1 and stats.mean_ms > 0


def test_the_sweeper_resends_only_readings_of_ready_photos(ocr_on, alice):
    ready = ready_photo(alice, sign_jpeg())
    other = ready_photo(alice, sign_jpeg(("TESCO",)), name="other.jpg")
    PhotoText.objects.update(updated_at=timezone.now() - timedelta(minutes=10))
    Photo.objects.filter(pk=other.pk).update(status=Photo.Status.FAILED)
    assert text_readings_requeue() == 1
    # Re-sent: not again until it has waited another while.
    assert PhotoText.objects.get(photo=ready).updated_at > timezone.now() - timedelta(minutes=1)
    assert text_readings_requeue() == 0
