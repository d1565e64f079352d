"""Text in photos: ask for readings, read one photo's text, store it; turn OCR on and off.

A reading is asked for once a photo's vector is committed (``text_readings_request``, called
by the ingest pipeline), on its own queue, so embedding never waits for OCR and nothing OCR
does can touch the vector: a reading that fails marks only the ``PhotoText`` row failed.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchVector
from django.db import transaction
from django.db.models import F, Value
from django.utils import timezone

from search import dispatch
from search.models import Photo, PhotoText, Pipeline
from search.text.selectors import ocr_is_enabled
from workers.embedding.images import ImageDecodeError, decode_photo
from workers.embedding.ocr import (
    OcrError,
    OcrReader,
    TextReading,
    fold,
    load_reader,
    read_text,
)

logger = logging.getLogger(__name__)


def text_readings_request(*, photo_ids: Sequence[int]) -> int:
    """Mark these photos' text as waiting to be read and ask the OCR queue to read it (after
    commit). Does nothing while OCR is off. Returns how many readings were asked for."""
    if not photo_ids or not ocr_is_enabled():
        return 0
    ids = sorted(set(photo_ids))
    with transaction.atomic():
        PhotoText.objects.bulk_create([PhotoText(photo_id=pk) for pk in ids], ignore_conflicts=True)
        # A photo processed again (a retry, a new upload of its file) is read again.
        PhotoText.objects.filter(photo_id__in=ids).update(
            status=PhotoText.Status.PENDING,
            attempts=0,
            failure_reason="",
            updated_at=timezone.now(),
        )
        for pk in ids:
            dispatch.read_photo_text(pk)
    return len(ids)


def text_readings_requeue(*, older_than: timedelta = timedelta(minutes=5), limit: int = 500) -> int:
    """For the sweeper: ask again for readings left waiting (a lost message), and for ready
    photos that have none yet (read before OCR was turned on). Returns how many."""
    if not ocr_is_enabled():
        return 0
    stale = timezone.now() - older_than
    waiting = list(
        PhotoText.objects.filter(
            status=PhotoText.Status.PENDING,
            updated_at__lt=stale,
            photo__status=Photo.Status.READY,  # a photo being processed again asks anew
        )
        .order_by("updated_at")
        .values_list("photo_id", flat=True)[:limit]
    )
    unread = list(
        Photo.objects.filter(status=Photo.Status.READY, text__isnull=True)
        .order_by("pk")
        .values_list("pk", flat=True)[: max(0, limit - len(waiting))]
    )
    with transaction.atomic():
        PhotoText.objects.bulk_create(
            [PhotoText(photo_id=pk) for pk in unread], ignore_conflicts=True
        )
        PhotoText.objects.filter(photo_id__in=waiting).update(updated_at=timezone.now())
        for pk in [*waiting, *unread]:
            dispatch.read_photo_text(pk)
    return len(waiting) + len(unread)


def photo_text_read(*, photo_id: int, reader: OcrReader | None = None) -> str | None:
    """Read the text of a ready photo (a video: its poster) and store it. Safe to run twice:
    a reading already done by the configured engine is kept.

    Returns the reading's new status ("done", "failed"), or ``None`` when there was nothing to
    do. Bad pictures, engine failures and the engine's time limit fail this reading alone.
    """
    reader = reader or configured_reader()
    with transaction.atomic():
        claimed = PhotoText.objects.filter(
            status=PhotoText.Status.PENDING,
            photo_id=photo_id,
            photo__status=Photo.Status.READY,
        ).update(attempts=F("attempts") + 1, updated_at=timezone.now())
    if not claimed:
        return None
    row = PhotoText.objects.select_related("photo").get(photo_id=photo_id)
    if row.attempts > settings.MEDIASEARCH_OCR_MAX_ATTEMPTS:
        # Each earlier attempt was counted and never finished: it took its worker down.
        return photo_text_fail(
            photo_id=photo_id,
            reason=f"reading the text stopped its worker {row.attempts - 1} times",
        )
    try:
        picture = _picture(row.photo)
        reading = read_text(
            picture,
            reader=reader,
            max_side=settings.MEDIASEARCH_OCR_MAX_SIDE,
            time_limit=settings.MEDIASEARCH_OCR_TIME_LIMIT,
        )
    except (ImageDecodeError, OcrError, OSError) as exc:
        logger.info("photo %s: OCR failed: %s", photo_id, exc)
        return photo_text_fail(photo_id=photo_id, reason=str(exc))
    photo_text_store(photo_id=photo_id, reading=reading)
    return PhotoText.Status.DONE


def photo_text_store(*, photo_id: int, reading: TextReading) -> bool:
    """Store ``reading`` as the photo's text, with its full-text vector. Returns whether the
    row was still there to write (the photo may have been deleted meanwhile)."""
    words = [
        {"text": word.text, "conf": word.confidence, "box": list(word.box)}
        for word in reading.words
    ]
    folded = fold(reading.text)
    return bool(
        PhotoText.objects.filter(photo_id=photo_id).update(
            status=PhotoText.Status.DONE,
            engine=reading.engine,
            words=words,
            folded=folded,
            search=SearchVector(Value(folded), config="simple"),
            rotation=reading.rotation % 360,
            ms=round(reading.ms, 1),
            failure_reason="",
            read_at=timezone.now(),
            updated_at=timezone.now(),
        )
    )


def photo_text_fail(*, photo_id: int, reason: str) -> str:
    """Mark the photo's reading failed with ``reason``; the photo itself is left alone (its
    vector, its status, its search by CLIP)."""
    PhotoText.objects.filter(photo_id=photo_id).update(
        status=PhotoText.Status.FAILED,
        failure_reason=reason[:500],
        words=[],
        folded="",
        search=None,
        read_at=timezone.now(),
        updated_at=timezone.now(),
    )
    return PhotoText.Status.FAILED


def ocr_set_enabled(*, enabled: bool) -> None:
    """Turn OCR on or off for the whole library (the dashboard's switch). Turned back on, the
    sweeper asks for the readings that were skipped meanwhile."""
    Pipeline.objects.update_or_create(pk=1, defaults={"ocr_enabled": enabled})


def _picture(photo: Photo):
    if photo.kind == Photo.Kind.VIDEO:
        # A video's text is read in its poster frame (the preview the worker made).
        if not photo.preview:
            raise ImageDecodeError("the video has no poster to read")
        with photo.preview.open("rb") as source:
            return decode_photo(source.read()).image
    with photo.file.open("rb") as source:
        return decode_photo(
            source,
            max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS,
            min_side=settings.MEDIASEARCH_OCR_MAX_SIDE,
        ).image


@functools.cache
def _reader(name: str, languages: str, threads: int) -> OcrReader:
    options: dict[str, object] = {"threads": threads} if name == "rapidocr" else {}
    if name == "tesseract":
        options["languages"] = languages
    return load_reader(name, **options)


def configured_reader() -> OcrReader:
    """This process's reader, as the settings name it (loaded once, models on first use)."""
    return _reader(
        settings.MEDIASEARCH_OCR_ENGINE,
        settings.MEDIASEARCH_OCR_LANGUAGES,
        settings.MEDIASEARCH_OCR_THREADS,
    )
