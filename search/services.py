"""Writes: every change to photos and their vectors goes through these functions."""

from __future__ import annotations

import errno
import hashlib
import logging
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.db.models import Case, F, Q, When
from django.utils import timezone

from search.models import (
    Album,
    ApiToken,
    Embedding,
    NearDuplicatePair,
    Photo,
    PhotoTag,
    SearchLog,
    photo_upload_to,
)
from search.query import SearchFilters
from search.selectors import photos_nearest, search_choices_changed
from search.vector_index import ensure_vector_index
from workers.embedding.active import get_engine, get_tagger
from workers.embedding.images import (
    DecodedPhoto,
    ImageDecodeError,
    PreparedPhoto,
    decode_image,
    identify_format,
    prepare_photo,
)
from workers.embedding.pixels import pixel_correlation, pixel_signature
from workers.embedding.tags import Tags, VocabularyError

logger = logging.getLogger(__name__)


class PhotoRejected(ValueError):
    """An upload that is refused outright; ``str(error)`` names the file and the reason."""

    def __init__(self, filename: str, reason: str):
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


def too_big_reason() -> str:
    """Why a file over ``MEDIASEARCH_MAX_UPLOAD_BYTES`` is refused (the upload page's script
    refuses such files before sending them, with these same words)."""
    limit_mb = settings.MEDIASEARCH_MAX_UPLOAD_BYTES // (1024 * 1024)
    return f"the file is larger than the {limit_mb} MB limit"


@dataclass(frozen=True)
class PhotoCreateResult:
    photo: Photo
    created: bool  # False: the owner already had these exact bytes


def photo_create(*, owner, file: UploadedFile) -> PhotoCreateResult:
    """Store an upload and queue it for embedding once the transaction commits.

    The same bytes uploaded twice by one owner give back the existing photo.
    Raises ``PhotoRejected`` for files that are not an image we accept.
    """
    name = display_filename(file.name)
    if file.size is not None and file.size > settings.MEDIASEARCH_MAX_UPLOAD_BYTES:
        raise PhotoRejected(name, too_big_reason())
    try:
        image_format = identify_format(file, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS)
    except ImageDecodeError as exc:
        raise PhotoRejected(name, str(exc)) from None

    digest = _sha256(file)
    existing = Photo.objects.filter(owner=owner, sha256=digest).first()
    if existing is not None:
        return PhotoCreateResult(photo=existing, created=False)

    photo = Photo(
        owner=owner,
        original_filename=name,
        size_bytes=file.size,
        sha256=digest,
        image_format=image_format,
        queued_at=timezone.now(),
    )
    _original_store(photo, file, name)
    try:
        with transaction.atomic():
            photo.save()
            transaction.on_commit(lambda: _enqueue_embedding(photo.pk))
    except IntegrityError:
        # The same bytes arrived twice at once; the other request stored them first.
        photo.file.delete(save=False)
        existing = Photo.objects.get(owner=owner, sha256=digest)
        return PhotoCreateResult(photo=existing, created=False)
    except BaseException:
        photo.file.delete(save=False)
        raise
    return PhotoCreateResult(photo=photo, created=True)


def _original_store(photo: Photo, file: UploadedFile, name: str) -> None:
    """Write the original under its generated name; a storage failure (a full disk) leaves
    nothing behind and refuses the file with the reason."""
    storage = photo.file.storage
    target = photo_upload_to(photo, file.name or "upload")
    try:
        photo.file.name = storage.save(target, file)
    except OSError as exc:
        logger.error("could not store %s: %s", target, exc)
        if storage.exists(target):
            storage.delete(target)  # the part written before the failure
        if exc.errno == errno.ENOSPC:
            reason = "could not be stored: the server's storage is full (nothing was kept)"
        else:
            reason = f"could not be stored ({exc.strerror or exc}); nothing was kept"
        raise PhotoRejected(name, reason) from None


@dataclass(frozen=True)
class UploadItem:
    """What became of one file of an upload."""

    filename: str  # as the user named it (see ``display_filename``)
    outcome: str  # "created"; "duplicate": the owner already had these bytes; "rejected"
    photo: Photo | None  # the new or the existing photo; None when rejected
    reason: str = ""  # why it was rejected


@dataclass(frozen=True)
class UploadReport:
    created: list[Photo]
    duplicates: list[Photo]
    rejected: list[str]  # one reason per refused file, naming the file
    items: list[UploadItem] = field(default_factory=list)  # every file, in the order sent

    def summary(self, photo_json: Callable[[Photo], dict]) -> dict:
        """The report as the upload page and the API answer it: counts, then every file with
        its outcome and its photo as ``photo_json`` shows one."""
        return {
            "created": len(self.created),
            "duplicates": len(self.duplicates),
            "rejected": len(self.rejected),
            "results": [
                {
                    "filename": item.filename,
                    "outcome": item.outcome,
                    "reason": item.reason,
                    "photo": photo_json(item.photo) if item.photo else None,
                }
                for item in self.items
            ],
        }


def photos_create_many(*, owner, files: list[UploadedFile]) -> UploadReport:
    """Store each file on its own: one refused file never stops the others."""
    created: list[Photo] = []
    duplicates: list[Photo] = []
    rejected: list[str] = []
    items: list[UploadItem] = []
    for file in files:
        try:
            result = photo_create(owner=owner, file=file)
        except PhotoRejected as exc:
            rejected.append(str(exc))
            items.append(UploadItem(exc.filename, "rejected", photo=None, reason=exc.reason))
            continue
        (created if result.created else duplicates).append(result.photo)
        outcome = "created" if result.created else "duplicate"
        items.append(UploadItem(display_filename(file.name), outcome, photo=result.photo))
    return UploadReport(created=created, duplicates=duplicates, rejected=rejected, items=items)


def photo_embed(*, photo_id: int) -> Photo.Status | None:
    """Embed one photo (see ``photos_embed``); return its new status, or None if untouched."""
    return photos_embed(photo_id=photo_id, batch_size=1).get(photo_id)


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
                field.save("derived.jpg", ContentFile(data), save=False)
                written.append(field.name)
                photo.derived_bytes += len(data)
        _embedded_save(decoded, vectors, model_id=engine.model_id)
    except BaseException:
        # Nothing points at the new files unless the rows were written: remove them.
        for name in written:
            storage.delete(name)
        raise
    embedded = [photo.pk for photo, _ in decoded]
    transaction.on_commit(partial(_enqueue_near_duplicates, embedded, engine.model_id))
    statuses.update((photo.pk, Photo.Status.READY) for photo, _ in decoded)
    for name in replaced:
        # A photo embedded again (after a crash mid-batch) leaves no orphaned files behind.
        if name:
            storage.delete(name)
    return statuses


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
    tags = _tags_of(vectors, model_id=model_id)
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


def _tags_of(vectors, *, model_id: str) -> list[Tags] | None:
    """Tags for freshly encoded vectors, or None when they cannot be had now.

    A vocabulary file that cannot be read never holds up the vectors: the photos are stored
    untagged (or keep their old tags) and ``retag_photos`` catches up once it is fixed.
    """
    engine = get_engine()
    if engine.model_id != model_id:
        return None
    try:
        tagger = get_tagger(engine)
    except VocabularyError:
        logger.exception("photos stored without tags")
        return None
    return tagger.tags(vectors, min_score=settings.MEDIASEARCH_TAG_MIN_SCORE)


def photo_tags_replace(*, model_id: str, tags_by_photo: Mapping[int, Tags]) -> int:
    """Make each photo's tags under ``model_id`` exactly the given (name, score) pairs.

    Tags of other models are left alone. Returns how many photos' tag names changed (a new
    score for the same name does not count). Safe to run twice: the second call changes nothing.
    """
    wanted = {photo_id: {name for name, _ in tags} for photo_id, tags in tags_by_photo.items()}
    with transaction.atomic():
        existing = PhotoTag.objects.filter(model_id=model_id, photo_id__in=list(wanted))
        before: dict[int, set[str]] = {}
        stale = []
        for pk, photo_id, name in existing.values_list("pk", "photo_id", "name"):
            before.setdefault(photo_id, set()).add(name)
            if name not in wanted[photo_id]:
                stale.append(pk)
        if stale:
            PhotoTag.objects.filter(pk__in=stale).delete()
        PhotoTag.objects.bulk_create(
            [
                PhotoTag(photo_id=photo_id, model_id=model_id, name=name, score=score)
                for photo_id, tags in tags_by_photo.items()
                for name, score in tags
            ],
            update_conflicts=True,
            unique_fields=["photo", "model_id", "name"],
            update_fields=["score"],
        )
    return sum(before.get(photo_id, set()) != names for photo_id, names in wanted.items())


@dataclass(frozen=True)
class RetagResult:
    photos: int  # photos with a vector under the model, whose tags were recomputed
    changed: int  # of those, photos whose tag names changed


def photos_retag(
    *, model_id: str, photo_ids: Iterable[int] | None = None, batch_size: int = 500
) -> RetagResult:
    """Recompute the tags of photos (all, or ``photo_ids``) from their stored vectors under
    ``model_id`` and the active vocabulary: no image is decoded, no image tower runs.

    Run it after the vocabulary or the minimum score changed. Photos without a vector under
    ``model_id`` are skipped. Each batch is one transaction that holds the photos' vector rows,
    so a worker embedding one of them at the same time writes its tags before or after, never
    in between. Safe to run twice. Raises ``ValueError`` when ``model_id`` is not the model
    this process runs (its text tower encodes the vocabulary) and ``VocabularyError`` when the
    vocabulary cannot be read.
    """
    engine = get_engine()
    if engine.model_id != model_id:
        raise ValueError(
            f"tags under {model_id} need that model; this process runs {engine.model_id}"
        )
    tagger = get_tagger(engine)
    minimum = settings.MEDIASEARCH_TAG_MIN_SCORE
    vectors = Embedding.objects.filter(model_id=model_id).order_by("photo_id")
    if photo_ids is not None:
        vectors = vectors.filter(photo_id__in=list(photo_ids))
    photos = changed = 0
    after = 0
    while True:
        with transaction.atomic():
            rows = list(
                vectors.select_for_update()
                .filter(photo_id__gt=after)
                .values_list("photo_id", "vector")[:batch_size]
            )
            if not rows:
                break
            tags = tagger.tags(np.stack([vector for _, vector in rows]), min_score=minimum)
            changed += photo_tags_replace(
                model_id=model_id,
                tags_by_photo={photo_id: t for (photo_id, _), t in zip(rows, tags, strict=True)},
            )
        photos += len(rows)
        after = rows[-1][0]
    if changed:
        search_choices_changed()  # the tag filter's names and counts
    return RetagResult(photos=photos, changed=changed)


# How many of a photo's nearest neighbours may be its near-duplicates. More copies than this of
# one picture still end in one group, linked through each other's neighbours.
NEAR_DUPLICATE_NEIGHBOURS = 20


def near_duplicate_pairs_find(*, photo_ids: Sequence[int], model_id: str) -> int:
    """Record which of their owner's photos each photo nearly duplicates under ``model_id``.

    A candidate is one of the photo's nearest neighbours (through the HNSW index) within
    ``MEDIASEARCH_DUPLICATE_MAX_DISTANCE``; it is recorded only if the two thumbnails also
    correlate by at least ``MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION``, which tells a copy
    from another picture of the same things. Photos without a vector under ``model_id`` are
    skipped. Safe to run twice (an upsert); return how many pairs were written.
    """
    embeddings = (
        Embedding.objects.filter(
            photo_id__in=photo_ids, model_id=model_id, photo__status=Photo.Status.READY
        )
        .select_related("photo__owner")
        .order_by("photo_id")
    )
    max_distance = settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE
    signatures: dict[int, np.ndarray | None] = {}
    found: dict[tuple[int, int], float] = {}
    for embedding in embeddings:
        photo = embedding.photo
        hits = photos_nearest(
            user=photo.owner,
            vector=embedding.vector,
            model_id=model_id,
            # Only the owner's own photos: never one from an album shared with them.
            filters=SearchFilters(owner_id=photo.owner_id),
            limit=NEAR_DUPLICATE_NEIGHBOURS,
            exclude_photo_id=photo.pk,
        ).hits
        for hit in hits:
            distance = max(0.0, 1.0 - hit.score)
            key = (min(photo.pk, hit.photo.pk), max(photo.pk, hit.photo.pk))
            if distance > max_distance or key in found:
                continue
            if _pixels_match(photo, hit.photo, signatures):
                found[key] = distance
    if not found:
        return 0
    with transaction.atomic():
        # Lock both ends so that a photo deleted meanwhile is left out instead of failing the
        # insert; in id order, like photos_delete, so that neither waits on the other in a cycle.
        alive = set(
            Photo.objects.select_for_update(no_key=True)
            .filter(pk__in={pk for key in found for pk in key})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = [
            NearDuplicatePair(photo_id=first, other_id=second, model_id=model_id, distance=d)
            for (first, second), d in sorted(found.items())
            if first in alive and second in alive
        ]
        NearDuplicatePair.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["photo", "other", "model_id"],
            update_fields=["distance"],
        )
    return len(rows)


def _pixels_match(photo: Photo, other: Photo, signatures: dict[int, np.ndarray | None]) -> bool:
    for item in (photo, other):
        if item.pk not in signatures:
            signatures[item.pk] = _thumbnail_signature(item)
    first, second = signatures[photo.pk], signatures[other.pk]
    if first is None or second is None:
        return False
    minimum = settings.MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION
    return pixel_correlation(first, second) >= minimum


def _thumbnail_signature(photo: Photo) -> np.ndarray | None:
    try:
        with photo.thumbnail.open("rb") as handle:
            return pixel_signature(decode_image(handle))
    except (FileNotFoundError, ValueError) as exc:
        # No thumbnail to compare (missing, or unreadable): no pair rather than a false one.
        logger.warning("photo %s: no thumbnail to compare for near-duplicates: %s", photo.pk, exc)
        return None


def photos_delete(*, owner, photo_ids: Iterable[int]) -> list[int]:
    """Delete those of ``photo_ids`` that ``owner`` owns, with their vectors, pairs and tags.

    Their original, thumbnail and preview files are removed from storage once the transaction
    commits (a rollback keeps them, with the rows that point at them). Photos of other owners
    are left alone. Return the ids deleted.
    """
    with transaction.atomic():
        photos = list(
            Photo.objects.select_for_update()
            .filter(owner=owner, pk__in=list(photo_ids))
            .order_by("pk")
        )
        files = [
            (field.storage, field.name)
            for photo in photos
            for field in (photo.file, photo.thumbnail, photo.preview)
            if field.name
        ]
        deleted = [photo.pk for photo in photos]
        search_choices_changed(photo_ids=deleted)  # while it can still see who saw them
        Photo.objects.filter(pk__in=deleted).delete()
        transaction.on_commit(partial(_files_delete, files))
    if deleted:
        logger.info("user %s deleted photos %s", owner.pk, deleted)
    return deleted


def _files_delete(files: list[tuple]) -> None:
    for storage, name in files:
        try:
            storage.delete(name)
        except Exception:
            # The rows are gone already; a file left behind costs space, not correctness.
            logger.warning("could not delete %s from storage", name, exc_info=True)


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
    from search.pipeline import pipeline_is_paused

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
            transaction.on_commit(lambda photo_id=photo_id: _enqueue_embedding(photo_id))
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
    from search.pipeline import pipeline_is_paused

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


def _enqueue_embedding(photo_id: int) -> None:
    from workers.tasks import embed_photo

    try:
        embed_photo.delay(photo_id)
    except Exception:
        # The photo is committed as pending; the sweeper sends it again when Redis is back.
        logger.warning("could not queue photo %s; the sweeper will", photo_id, exc_info=True)


def _enqueue_near_duplicates(photo_ids: list[int], model_id: str) -> None:
    from workers.tasks import find_near_duplicates

    try:
        find_near_duplicates.delay(photo_ids, model_id)
    except Exception:
        # Nothing is lost but the pairs, and ``manage.py find_duplicates`` records them again.
        logger.warning("could not queue the near-duplicate search for photos %s", photo_ids,
                       exc_info=True)  # fmt: skip


def _sha256(file: UploadedFile) -> str:
    digest = hashlib.sha256()
    for chunk in file.chunks():
        digest.update(chunk)
    file.seek(0)
    return digest.hexdigest()


def display_filename(name: str | None) -> str:
    """The user's file name as data: no folders, no control characters, bounded length."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(ch for ch in base if ch.isprintable()).strip() or "unnamed"
    if len(cleaned) <= 255:
        return cleaned
    stem, dot, suffix = cleaned.rpartition(".")
    if dot and len(suffix) <= 10:
        return stem[: 254 - len(suffix)] + "." + suffix
    return cleaned[:255]


# --- albums ---------------------------------------------------------------------------------


class AlbumError(ValueError):
    """An album change that cannot be made; ``str(error)`` says why, for the user."""


def album_create(*, owner, name: str) -> Album:
    name = name.strip()
    if not name:
        raise AlbumError("Give the album a name.")
    try:
        with transaction.atomic():
            return Album.objects.create(owner=owner, name=name)
    except IntegrityError:
        raise AlbumError(f"You already have an album called “{name}”.") from None


def album_rename(*, album: Album, name: str) -> Album:
    name = name.strip()
    if not name:
        raise AlbumError("Give the album a name.")
    if Album.objects.filter(owner=album.owner, name=name).exclude(pk=album.pk).exists():
        raise AlbumError(f"You already have an album called “{name}”.")
    album.name = name
    album.save(update_fields=["name", "updated_at"])
    return album


def album_delete(*, album: Album) -> None:
    """Delete the album; its photos stay in their owner's library."""
    album.delete()
    search_choices_changed()  # its photos are no longer visible to those it was shared with


def album_add_photos(*, album: Album, photo_ids: list[int]) -> int:
    """Add photos of the album's owner to it (others' photos are ignored); return how many."""
    photos = list(Photo.objects.filter(owner=album.owner, pk__in=photo_ids).exclude(albums=album))
    album.photos.add(*photos)
    search_choices_changed()
    return len(photos)


def album_remove_photos(*, album: Album, photo_ids: list[int]) -> int:
    photos = list(album.photos.filter(pk__in=photo_ids))
    album.photos.remove(*photos)
    search_choices_changed()
    return len(photos)


def album_share(*, album: Album, usernames: list[str]) -> list:
    """Give the named users read access to the album; raises ``AlbumError`` naming any unknown
    user (and then shares with nobody)."""
    User = get_user_model()
    wanted = {name.strip() for name in usernames if name.strip()}
    users = list(User.objects.filter(username__in=wanted, is_active=True))
    unknown = wanted - {user.get_username() for user in users}
    if unknown:
        raise AlbumError("No such user: " + ", ".join(sorted(unknown)))
    users = [user for user in users if user.pk != album.owner_id]
    album.shared_with.add(*users)
    search_choices_changed()
    return users


def album_unshare(*, album: Album, usernames: list[str]) -> None:
    album.shared_with.remove(*album.shared_with.filter(username__in=usernames))
    search_choices_changed()


# --- the search log -------------------------------------------------------------------------


def search_log_record(
    *, user, outcome, query: str, filters: SearchFilters, via_api: bool = False
) -> SearchLog:
    """Record one search (a ``selectors.SearchOutcome``) for the dashboard."""
    return SearchLog.objects.create(
        user=user if user.is_authenticated else None,
        kind=outcome.kind,
        query=query[:500],
        filters=filters.as_log(),
        via_api=via_api,
        result_count=len(outcome.hits),
        top_score=outcome.top_score,
        latency_ms=outcome.latency_ms,
    )


# --- API tokens -----------------------------------------------------------------------------


# A token's last use is recorded at most this often, so that requests do not each write a row.
API_TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def api_token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new API token for ``user``; returns the row and the token itself, which is not stored
    (only its SHA-256 is) and so can be shown this once only."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], key_hash=api_token_digest(key), prefix=key[:8]
    )
    return token, key


def api_token_revoke(*, user, token_id: int) -> bool:
    """Delete one of ``user``'s tokens; False when they have no token with that id."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=user).delete()
    return deleted > 0


def api_token_authenticate(*, key: str):
    """The active user that ``key`` belongs to, or None; records when the token was last used.

    The lookup is by the SHA-256 of a 256-bit random token, so comparing in constant time would
    protect nothing: a timing difference cannot lead anyone towards a valid token.
    """
    if not key or len(key) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=api_token_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - API_TOKEN_TOUCH_INTERVAL
    if token.last_used_at is None or token.last_used_at < stale:
        # Conditional, so that concurrent requests write it once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
    return token.user
