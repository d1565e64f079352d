"""The ingest pipeline's writes: claim waiting photos, embed them, release or fail them, and
re-send what was left behind."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Case, F, Q, When
from django.db.models.fields.files import FieldFile
from django.utils import timezone

from search import dispatch
from search.ingest.pipeline import pipeline_is_paused
from search.models import (
    Embedding,
    Photo,
)
from search.photos.changes import search_choices_changed
from search.retrieval.vector_index import ensure_vector_index
from search.tags.services import photo_tags_replace, vector_tags
from workers.active_engine import get_engine
from workers.embedding.images import (
    DecodedPhoto,
    ImageDecodeError,
    PreparedPhoto,
    prepare_photo,
)

logger = logging.getLogger(__name__)


def photos_embed(*, photo_id: int, batch_size: int) -> dict[int, Photo.Status]:
    """Claim ``photo_id`` and up to ``batch_size - 1`` other waiting photos, embed them together.

    Claiming uses ``FOR UPDATE SKIP LOCKED``, so concurrent workers never take the same photo.
    The batch is decoded photo by photo, encoded in one forward pass and written in one
    transaction. Safe to run twice: a photo that is ready, failed, or held by another worker is
    left alone. Bad image data marks that photo failed (never retried); any other error
    (database, storage) releases the whole batch and propagates so the caller can retry.
    Returns the new status of each photo this call handled.
    """
    claimed = _photos_claim(first=photo_id, limit=batch_size)
    if not claimed:
        return {}
    try:
        return _embed_claimed(claimed)
    except BaseException:
        _photos_release([photo.pk for photo in claimed])
        raise


def _embed_claimed(photos: list[Photo]) -> dict[int, Photo.Status]:
    statuses: dict[int, Photo.Status] = {}
    engine = get_engine()
    sides = (settings.MEDIASEARCH_THUMBNAIL_SIZE, settings.MEDIASEARCH_PREVIEW_SIZE)
    decoded: list[tuple[Photo, DecodedPhoto]] = []
    prepared: list[PreparedPhoto] = []
    # Decoding and resizing (Pillow, outside the GIL) run on every core; the model then
    # gets the whole batch in one forward pass.
    results = _photos_prepare(photos, sides, engine.input_side)
    for photo, result in zip(photos, results, strict=True):
        if isinstance(result, PreparedPhoto):
            decoded.append((photo, result.decoded))
            prepared.append(result)
        elif isinstance(result, FileNotFoundError):
            photo_mark_failed(photo_id=photo.pk, reason="the original file is missing from storage")
            statuses[photo.pk] = Photo.Status.FAILED
        elif isinstance(result, ImageDecodeError):
            photo_mark_failed(photo_id=photo.pk, reason=str(result))
            statuses[photo.pk] = Photo.Status.FAILED
        else:
            raise result
    if not decoded:
        return statuses

    vectors = engine.encode_images([item.model_image for item in prepared])
    ensure_vector_index(engine.model_id, engine.dim)
    storage = photos[0].file.storage
    replaced, written = [], []
    try:
        for (photo, _), item in zip(decoded, prepared, strict=True):
            replaced += [photo.thumbnail.name, photo.preview.name]
            photo.derived_bytes = 0
            for field, data in zip((photo.thumbnail, photo.preview), item.renditions, strict=True):
                _rendition_save(field, data)
                written.append(field.name)
                photo.derived_bytes += len(data)
        _embedded_save(decoded, vectors, model_id=engine.model_id)
    except BaseException:
        # Nothing points at the new files unless the rows were written: remove them.
        for name in written:
            storage.delete(name)
        raise
    embedded = [photo.pk for photo, _ in decoded]
    dispatch.find_near_duplicates(embedded, engine.model_id)
    statuses.update((photo.pk, Photo.Status.READY) for photo, _ in decoded)
    for name in replaced:
        # A photo embedded again (after a crash mid-batch) leaves no orphaned files behind.
        if name:
            storage.delete(name)
    return statuses


def _rendition_save(field: FieldFile, data: bytes) -> None:
    """Write one rendition under a new name. A write that fails part way (a full disk) leaves
    no partial file: the storage never names it, so the caller could not remove it."""
    name = field.field.generate_filename(field.instance, "derived.jpg")
    taken = field.storage.exists(name)  # then the storage picks another name: not ours to delete
    try:
        field.name = field.storage.save(name, ContentFile(data), max_length=field.field.max_length)
    except BaseException:
        if not taken and field.storage.exists(name):
            field.storage.delete(name)
        raise


def _photos_prepare(
    photos: list[Photo], sides: tuple[int, int], model_side: int
) -> list[PreparedPhoto | BaseException]:
    """Decode and resize a batch on a thread pool; each photo's error is returned, not raised."""

    def prepare(photo: Photo) -> PreparedPhoto | BaseException:
        try:
            with photo.file.open("rb") as handle:
                return prepare_photo(
                    handle,
                    sides=sides,
                    model_side=model_side,
                    max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS,
                )
        except Exception as exc:  # sorted out by the caller, on its own thread
            return exc

    threads = min(settings.MEDIASEARCH_DECODE_THREADS, len(photos))
    if threads <= 1:
        return [prepare(photo) for photo in photos]
    with ThreadPoolExecutor(threads, thread_name_prefix="photo-decode") as pool:
        return list(pool.map(prepare, photos))


def _embedded_save(decoded, vectors, *, model_id: str) -> None:
    """Write the vectors, tags and ready state of a decoded batch, in one transaction."""
    now = timezone.now()
    tags = vector_tags(vectors, model_id=model_id)
    with transaction.atomic():
        Embedding.objects.bulk_create(
            [
                Embedding(photo_id=photo.pk, model_id=model_id, vector=vector)
                for (photo, _), vector in zip(decoded, vectors, strict=True)
            ],
            update_conflicts=True,
            unique_fields=["photo", "model_id"],
            update_fields=["vector"],
        )
        if tags is not None:
            photo_tags_replace(
                model_id=model_id,
                tags_by_photo={photo.pk: t for (photo, _), t in zip(decoded, tags, strict=True)},
            )
        for photo, item in decoded:
            metadata = item.metadata
            Photo.objects.filter(pk=photo.pk).update(
                status=Photo.Status.READY,
                width=item.width,
                height=item.height,
                thumbnail=photo.thumbnail.name,
                preview=photo.preview.name,
                derived_bytes=photo.derived_bytes,
                taken_at=metadata.taken_at,
                taken_at_offset_minutes=metadata.taken_at_offset_minutes,
                camera_make=metadata.camera_make,
                camera_model=metadata.camera_model,
                latitude=metadata.latitude,
                longitude=metadata.longitude,
                failure_reason="",
                processed_at=now,
                updated_at=now,
            )
        search_choices_changed(photo_ids=[photo.pk for photo, _ in decoded])  # cameras, tags


def photo_mark_failed(*, photo_id: int, reason: str) -> None:
    """Record that a photo cannot be processed, with a reason the owner can read."""
    Photo.objects.filter(pk=photo_id).update(
        status=Photo.Status.FAILED,
        failure_reason=reason[:2000],
        processed_at=timezone.now(),
        updated_at=timezone.now(),
    )
    logger.info("photo %s failed: %s", photo_id, reason)


def photos_requeue_stalled(*, limit: int = 500) -> list[int]:
    """Ring the queue again for photos nobody is working on; return their ids.

    Pending photos whose message was sent long ago (Redis may have lost it) and photos stuck
    in processing past the timeout (their worker died) go back to pending and are re-sent,
    unless they have used up their attempts: those are marked failed, with the reason. Nothing
    is re-sent while the pipeline is paused.
    """
    if pipeline_is_paused():
        return []
    now = timezone.now()
    pending_since = now - timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER)
    processing_since = now - timedelta(seconds=settings.MEDIASEARCH_PROCESSING_TIMEOUT)
    stalled = Q(status=Photo.Status.PENDING) & (
        Q(queued_at__lt=pending_since) | Q(queued_at__isnull=True)
    ) | Q(status=Photo.Status.PROCESSING, processing_started_at__lt=processing_since)
    with transaction.atomic():
        rows = list(
            Photo.objects.select_for_update(skip_locked=True)
            .filter(stalled)
            .order_by("queued_at")
            .values_list("pk", "attempts")[:limit]
        )
        max_attempts = settings.MEDIASEARCH_MAX_ATTEMPTS
        given_up = [pk for pk, attempts in rows if attempts >= max_attempts]
        ids = [pk for pk, attempts in rows if attempts < max_attempts]
        Photo.objects.filter(pk__in=given_up).update(
            status=Photo.Status.FAILED,
            failure_reason=(
                f"gave up after {max_attempts} attempts that did not finish "
                "(the worker crashed, hit its time or memory limit, or a service was down)"
            ),
            processed_at=now,
            updated_at=now,
        )
        Photo.objects.filter(pk__in=ids).update(
            status=Photo.Status.PENDING, queued_at=now, updated_at=now
        )
        for photo_id in ids:
            dispatch.embed_photo(photo_id)
    if given_up:
        logger.warning("gave up on photos %s after repeated unfinished attempts", given_up)
    if ids:
        logger.info("re-queued %d stalled photos", len(ids))
    return ids


def _photos_claim(*, first: int, limit: int) -> list[Photo]:
    """Move ``first`` and other waiting photos to processing; return those this caller holds.

    Nothing is claimed unless ``first`` itself is waiting: each photo has its own message, and
    the others only ride along to fill the batch.

    Stale "processing" photos (their worker died) count as waiting; photos that used up their
    attempts do not (the sweeper marks them failed). Rows another transaction has locked are
    skipped, never waited for.
    """
    if pipeline_is_paused():
        return []  # the message is dropped; resuming sends every waiting photo again
    now = timezone.now()
    stale = now - timedelta(seconds=settings.MEDIASEARCH_PROCESSING_TIMEOUT)
    claimable = (
        Q(status=Photo.Status.PENDING)
        | Q(status=Photo.Status.PROCESSING, processing_started_at__lt=stale)
    ) & Q(attempts__lt=settings.MEDIASEARCH_MAX_ATTEMPTS)
    with transaction.atomic():
        ids = list(
            Photo.objects.select_for_update(skip_locked=True)
            .filter(claimable)
            .order_by(Case(When(pk=first, then=0), default=1), "queued_at", "pk")
            .values_list("pk", flat=True)[:limit]
        )
        if first not in ids:
            # Its own photo is done or held elsewhere: this message is a duplicate.
            return []
        Photo.objects.filter(pk__in=ids).update(
            status=Photo.Status.PROCESSING,
            processing_started_at=now,
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    return list(Photo.objects.filter(pk__in=ids).order_by("pk"))


def _photos_release(photo_ids: list[int]) -> None:
    """Give claimed photos back to the queue after a transient error (best effort)."""
    try:
        Photo.objects.filter(pk__in=photo_ids, status=Photo.Status.PROCESSING).update(
            status=Photo.Status.PENDING, updated_at=timezone.now()
        )
    except Exception:
        # The database may be the thing that is down; the sweeper releases them later.
        logger.warning("could not release photos %s; the sweeper will", photo_ids, exc_info=True)
