"""The ingest pipeline's writes: claim waiting photos, embed them, release or fail them, and
re-send what was left behind."""

from __future__ import annotations

import logging
import sys
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import connections, transaction
from django.db.models import Case, F, Q, QuerySet, When
from django.utils import timezone

from search import dispatch
from search.ingest.decoded import Decoded
from search.ingest.errors import INTERRUPTIONS, OUTAGES_NOT_COUNTED, TRANSIENT_ERRORS
from search.ingest.pipeline import pipeline_is_paused
from search.ingest.videos import video_decoded
from search.models import Embedding, Photo, attempt_files, rendition_names
from search.photos.changes import search_choices_changed
from search.photos.storage import object_store_outages_raised
from search.places.services import place_fields
from search.retrieval.vector_index import ensure_vector_index
from search.tags.services import photo_tags_replace, vector_tags
from search.text.services import text_readings_request
from workers.active_engine import get_engine
from workers.embedding.images import ImageDecodeError, PreparedPhoto, prepare_photo
from workers.embedding.model import ClipEngine as Engine
from workers.embedding.video import VideoDecodeError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """One attempt's hold on a batch of photos: only the attempt with this token may finish,
    fail or release them, and only while it keeps the lease (``_lease_kept``)."""

    token: uuid.UUID
    photos: list[Photo]
    # Tokens of earlier attempts at these photos that did not finish (their worker died, or
    # gave the photo back): their renditions, if written, point nowhere and are removed.
    unfinished: dict[int, uuid.UUID]

    @property
    def ids(self) -> list[int]:
        return [photo.pk for photo in self.photos]

    def held(self) -> QuerySet[Photo]:
        return Photo.objects.filter(status=Photo.Status.PROCESSING, claim_token=self.token)


def photos_embed(
    *, photo_id: int, batch_size: int, kind: str = Photo.Kind.PHOTO
) -> dict[int, Photo.Status]:
    """Claim ``photo_id`` and up to ``batch_size - 1`` other waiting items of its ``kind``
    (photos ride along with photos, never with a video), embed them together.

    Claiming uses ``FOR UPDATE SKIP LOCKED``, so concurrent workers never take the same photo,
    and a lease that this call renews while it works, so a dead worker's photos are taken again
    soon while a slow one keeps its own. The batch is decoded photo by photo, encoded in one
    forward pass and written in one transaction. Safe to run twice: a photo that is ready,
    failed, or held by another attempt is left alone.

    Bad image data fails that photo alone (never retried). An outage or a time limit gives the
    whole batch back and propagates, for the caller to retry. Any other error is a bug: the
    photos are tried again one by one, so that the one that causes it fails alone, with the
    error as its reason. Returns the new status of each photo this call handled.
    """
    claim = _photos_claim(first=photo_id, limit=batch_size, kind=kind)
    if claim is None:
        return {}
    _renditions_delete(_unfinished_renditions(claim))
    engine = get_engine()
    with _lease_kept(claim):
        try:
            with object_store_outages_raised():
                return _embed(claim.photos, engine=engine, claim=claim)
        except (*TRANSIENT_ERRORS, *INTERRUPTIONS) as exc:
            _photos_release(claim, counted=not isinstance(exc, OUTAGES_NOT_COUNTED))
            raise
        except Exception:
            if len(claim.photos) == 1:
                return _photo_crashed(claim.photos[0], claim)
            logger.exception(
                "a batch of %d crashed; embedding its photos one by one", len(claim.ids)
            )
            return _embed_one_by_one(claim, engine=engine)
        except BaseException:
            _photos_release(claim)
            raise


def photos_embed_ready(*, engine: Engine, photos: list[Photo], renditions: bool) -> int:
    """(Re-)compute ``engine``'s vectors of ready photos from their originals; they stay
    searchable meanwhile. With ``renditions``, their thumbnail, preview and metadata are made
    again from the same decode (after a change to decoding); a model switch's backfill needs
    only the vectors. The same write path as new photos: tags of the active model, pairs,
    ``updated_at`` and filter choices follow. Returns how many were embedded."""
    statuses = _embed(photos, engine=engine, claim=None, renditions=renditions)
    return sum(status == Photo.Status.READY for status in statuses.values())


def _embed_one_by_one(claim: Claim, *, engine: Engine) -> dict[int, Photo.Status]:
    statuses: dict[int, Photo.Status] = {}
    for photo in claim.photos:
        if not claim.held().filter(pk=photo.pk).exists():
            continue
        try:
            with object_store_outages_raised():
                statuses.update(_embed([photo], engine=engine, claim=claim))
        except (*TRANSIENT_ERRORS, *INTERRUPTIONS) as exc:
            _photos_release(claim, counted=not isinstance(exc, OUTAGES_NOT_COUNTED))
            raise
        except Exception:
            statuses.update(_photo_crashed(photo, claim))
    return statuses


def _photo_crashed(photo: Photo, claim: Claim) -> dict[int, Photo.Status]:
    exc = sys.exc_info()[1]
    logger.exception("embedding photo %s crashed", photo.pk)
    if _photo_fail(photo, reason=f"internal error: {exc!r}", claim=claim):
        return {photo.pk: Photo.Status.FAILED}
    return {}


def _embed(
    photos: list[Photo], *, engine: Engine, claim: Claim | None, renditions: bool = True
) -> dict[int, Photo.Status]:
    """The one write path for vectors: decode, encode, write renditions, save, then tidy.

    With a ``claim``, the photos it still holds become ready; without, ready photos get new
    vectors (and with ``renditions`` new renditions) and stay ready.
    """
    statuses: dict[int, Photo.Status] = {}
    videos = [photo for photo in photos if photo.kind == Photo.Kind.VIDEO]
    photos = [photo for photo in photos if photo.kind != Photo.Kind.VIDEO]
    for video in videos:
        # A video is a batch of its own: its keyframes fill the forward passes.
        attempt = claim.token if claim is not None else uuid.uuid4()
        try:
            item = video_decoded(video, engine=engine, renditions=renditions, attempt=attempt)
        except (FileNotFoundError, VideoDecodeError) as exc:
            if _photo_fail(video, reason=_failure_reason(exc, engine, claim), claim=claim):
                statuses[video.pk] = Photo.Status.FAILED
            continue
        statuses.update(embedded_store([item], engine=engine, claim=claim))
    if not photos:
        return statuses
    sides = (
        (settings.MEDIASEARCH_THUMBNAIL_SIZE, settings.MEDIASEARCH_PREVIEW_SIZE)
        if renditions
        else ()
    )
    # Decoding and resizing (Pillow, outside the GIL) run on every core; the model then
    # gets the whole batch in one forward pass.
    results = _photos_prepare(photos, sides, engine.input_side)
    decoded: list[tuple[Photo, PreparedPhoto]] = []
    for photo, result in zip(photos, results, strict=True):
        if isinstance(result, PreparedPhoto):
            decoded.append((photo, result))
            continue
        if not isinstance(result, (FileNotFoundError, ImageDecodeError)):
            raise result
        if _photo_fail(photo, reason=_failure_reason(result, engine, claim), claim=claim):
            statuses[photo.pk] = Photo.Status.FAILED
    if not decoded:
        return statuses

    vectors = engine.encode_images([item.model_image for _, item in decoded])
    items = [
        Decoded(
            photo=photo,
            frames=[(0, vector)],
            renditions=(item.renditions[0], item.renditions[1]) if renditions else None,
            fields=_still_fields(item) if renditions else {},
        )
        for (photo, item), vector in zip(decoded, vectors, strict=True)
    ]
    statuses.update(embedded_store(items, engine=engine, claim=claim))
    return statuses


def _failure_reason(exc: BaseException, engine: Engine, claim: Claim | None) -> str:
    reason = (
        "the original file is missing from storage"
        if isinstance(exc, FileNotFoundError)
        else str(exc)
    )
    if claim is None:
        # Say so rather than leave it unsearchable (and a model switch waiting) forever.
        reason = f"could not be embedded with {engine.spec.name}: {reason}"
    return reason


def embedded_store(
    items: list[Decoded], *, engine: Engine, claim: Claim | None
) -> dict[int, Photo.Status]:
    """The one write path for vectors, stills and videos alike: write renditions, save the
    rows of the items still held, then tidy the files. Returns the items made (or kept) ready.

    With a ``claim``, the photos it still holds become ready; without, ready photos get new
    vectors (and, with renditions, new files and metadata) and stay ready.
    """
    ensure_vector_index(engine.model_id, engine.dim)
    attempt = claim.token if claim is not None else uuid.uuid4()
    written = _renditions_write([item for item in items if item.renditions], attempt)
    new_files = {
        item.photo.pk: [*written.get(item.photo.pk, ()), *item.files.values()] for item in items
    }
    try:
        saved = _embedded_save(items, engine=engine, claim=claim, renditions=written)
    except BaseException:
        # Nothing points at the new files unless the rows were written: remove them.
        _renditions_delete([name for names in new_files.values() for name in names])
        raise
    # Items this attempt no longer held (deleted, or taken over) keep nothing it wrote, and
    # the items it saved lose the files they pointed at before.
    replaced = [
        getattr(item.photo, name).name
        for item in items
        if item.photo.pk in saved
        for name in [
            *(["thumbnail", "preview"] if item.photo.pk in written else []),
            *item.files,
        ]
    ]
    _renditions_delete(
        [name for pk, names in new_files.items() if pk not in saved for name in names]
        + [name for name in replaced if name]
    )
    stills = [item.photo.pk for item in items if item.photo.pk in saved and len(item.frames) == 1]
    if stills:
        dispatch.find_near_duplicates(sorted(stills), engine.model_id)
    if claim is not None:
        # Newly ready items have their text read on the OCR queue, after this commit.
        text_readings_request(photo_ids=sorted(saved))
    return {pk: Photo.Status.READY for pk in saved}


def _still_fields(item: PreparedPhoto) -> dict[str, object]:
    metadata = item.decoded.metadata
    return {
        "derived_bytes": sum(len(data) for data in item.renditions),
        "width": item.decoded.width,
        "height": item.decoded.height,
        "taken_at": metadata.taken_at,
        "taken_at_offset_minutes": metadata.taken_at_offset_minutes,
        "camera_make": metadata.camera_make,
        "camera_model": metadata.camera_model,
        "latitude": metadata.latitude,
        "longitude": metadata.longitude,
    }


def _photos_prepare(
    photos: list[Photo], sides: tuple[int, ...], model_side: int
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


def _renditions_write(items: list[Decoded], attempt: uuid.UUID) -> dict[int, tuple[str, str]]:
    """Store each item's thumbnail and preview under this attempt's names; return the names.

    On a storage error (a full disk) the files of this attempt are removed, the half-written
    one included: the names are this attempt's own, so nothing else can be lost.
    """
    written: dict[int, tuple[str, str]] = {}
    try:
        for item in items:
            assert item.renditions is not None
            thumbnail_name, preview_name = rendition_names(item.photo, attempt)
            thumbnail, preview = item.renditions
            written[item.photo.pk] = (
                default_storage.save(thumbnail_name, ContentFile(thumbnail)),
                default_storage.save(preview_name, ContentFile(preview)),
            )
    except BaseException:
        _renditions_delete(
            [name for item in items for name in rendition_names(item.photo, attempt)]
        )
        raise
    return written


def _renditions_delete(names: list[str]) -> None:
    """Remove rendition files nothing points at (best effort: a file left costs only space)."""
    for name in names:
        try:
            default_storage.delete(name)  # a file that is not there is no error
        except Exception:
            logger.warning("could not delete %s from storage", name, exc_info=True)


def _unfinished_renditions(claim: Claim) -> list[str]:
    by_pk = {photo.pk: photo for photo in claim.photos}
    return [
        name for pk, token in claim.unfinished.items() for name in attempt_files(by_pk[pk], token)
    ]


def _embedded_save(
    items: list[Decoded],
    *,
    engine: Engine,
    claim: Claim | None,
    renditions: dict[int, tuple[str, str]],
) -> set[int]:
    """Write the vectors, tags and state of decoded items, in one transaction, for the items
    still held (by ``claim``, or still ready without one); return their ids."""
    model_id = engine.model_id
    now = timezone.now()
    # An item's tags come from its one vector, or a video's from the mean of its moments.
    tags = vector_tags(np.stack([_summary(item) for item in items]), model_id=model_id)
    places = _places(items)
    rows = _still_held(claim)
    with transaction.atomic():
        held = set(
            rows.select_for_update()
            .filter(pk__in=[item.photo.pk for item in items])
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        kept = [i for i, item in enumerate(items) if item.photo.pk in held]
        for i in kept:  # moments of an earlier sampling that this one did not keep
            item = items[i]
            Embedding.objects.filter(photo_id=item.photo.pk, model_id=model_id).exclude(
                frame_ms__in=[at for at, _ in item.frames]
            ).delete()
        Embedding.objects.bulk_create(
            [
                Embedding(photo_id=items[i].photo.pk, model_id=model_id, frame_ms=at, vector=v)
                for i in kept
                for at, v in items[i].frames
            ],
            update_conflicts=True,
            unique_fields=["photo", "model_id", "frame_ms"],
            update_fields=["vector"],
        )
        if tags is not None:
            photo_tags_replace(
                model_id=model_id, tags_by_photo={items[i].photo.pk: tags[i] for i in kept}
            )
        for item in (items[i] for i in kept):
            fields: dict[str, object] = {
                "updated_at": now,
                **item.fields,
                **places.get(item.photo.pk, {}),
                **item.files,
            }
            if item.photo.pk in renditions:
                fields["thumbnail"], fields["preview"] = renditions[item.photo.pk]
            if claim is not None:
                fields.update(
                    status=Photo.Status.READY,
                    failure_reason="",
                    processed_at=now,
                    claim_token=None,
                    lease_expires_at=None,
                )
            Photo.objects.filter(pk=item.photo.pk).update(**fields)
        search_choices_changed(photo_ids=sorted(held))  # cameras, tags, places
    return held


def _places(items: list[Decoded]) -> dict[int, dict[str, str]]:
    """The place columns of the items whose metadata is written (their position is)."""
    located = [item for item in items if "latitude" in item.fields]
    positions = [(item.fields["latitude"], item.fields.get("longitude")) for item in located]
    fields = place_fields(positions)  # type: ignore[arg-type]
    return {item.photo.pk: place for item, place in zip(located, fields, strict=True)}


def _still_held(claim: Claim | None) -> QuerySet[Photo]:
    """The rows an attempt may still write: those its ``claim`` holds, or without a claim
    (backfill, re-embed) the photos that are still ready."""
    return Photo.objects.filter(status=Photo.Status.READY) if claim is None else claim.held()


def _summary(item: Decoded) -> np.ndarray:
    vectors = np.stack([vector for _, vector in item.frames])
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def _photo_fail(photo: Photo, *, reason: str, claim: Claim | None) -> bool:
    """Record that a photo cannot be processed, with a reason the owner can read, if it is
    still this attempt's (held by ``claim``, or ready without one). True if it was."""
    rows = _still_held(claim)
    now = timezone.now()
    failed = rows.filter(pk=photo.pk).update(
        status=Photo.Status.FAILED,
        failure_reason=reason[:2000],
        processed_at=now,
        updated_at=now,
        lease_expires_at=None,
    )
    if failed:
        logger.info("photo %s failed: %s", photo.pk, reason)
    return bool(failed)


@contextmanager
def _lease_kept(claim: Claim) -> Iterator[None]:
    """Renew ``claim``'s lease every third of its length while the body runs, from a thread
    with its own database connection. Rows locked elsewhere are skipped, never waited for;
    a renewal that fails (the database is away) is tried again at the next beat."""
    lease = settings.MEDIASEARCH_CLAIM_LEASE
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(lease / 3):
                try:
                    with transaction.atomic():
                        ids = list(
                            claim.held()
                            .filter(pk__in=claim.ids)
                            .select_for_update(skip_locked=True)
                            .values_list("pk", flat=True)
                        )
                        Photo.objects.filter(pk__in=ids).update(
                            lease_expires_at=timezone.now() + timedelta(seconds=lease)
                        )
                except Exception:
                    logger.warning(
                        "could not renew the lease of photos %s", claim.ids, exc_info=True
                    )
        finally:
            connections.close_all()  # this thread's connections only

    thread = threading.Thread(target=renew, name="claim-lease", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def photos_requeue_stalled(*, limit: int = 500) -> list[int]:
    """Ring the queue again for photos nobody is working on; return their ids.

    Pending photos whose message was sent long ago (Redis may have lost it) and photos whose
    claim's lease ran out (their worker died) go back to pending and are re-sent, unless they
    have used up their attempts: those are marked failed, with the reason. Nothing is re-sent
    while the pipeline is paused.
    """
    if pipeline_is_paused():
        return []
    now = timezone.now()
    pending_since = now - timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER)
    stalled = Q(status=Photo.Status.PENDING) & (
        Q(queued_at__lt=pending_since) | Q(queued_at__isnull=True)
    ) | _lease_expired(now)
    with transaction.atomic():
        rows = list(
            Photo.objects.select_for_update(skip_locked=True)
            .filter(stalled)
            .order_by("queued_at")
            .values_list("pk", "attempts", "kind")[:limit]
        )
        max_attempts = settings.MEDIASEARCH_MAX_ATTEMPTS
        given_up = [pk for pk, attempts, _ in rows if attempts >= max_attempts]
        ids = [pk for pk, attempts, _ in rows if attempts < max_attempts]
        kinds = {pk: kind for pk, _, kind in rows}
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
            dispatch.embed_item(photo_id, kinds[photo_id])
    if given_up:
        logger.warning("gave up on photos %s after repeated unfinished attempts", given_up)
    if ids:
        logger.info("re-queued %d stalled photos", len(ids))
    return ids


def _lease_expired(now) -> Q:
    return Q(status=Photo.Status.PROCESSING) & (
        Q(lease_expires_at__lt=now) | Q(lease_expires_at__isnull=True)
    )


def photos_claimable(now) -> Q:
    """The photos a worker may claim: waiting, or held by an attempt whose lease ran out, and
    with attempts left."""
    return (Q(status=Photo.Status.PENDING) | _lease_expired(now)) & Q(
        attempts__lt=settings.MEDIASEARCH_MAX_ATTEMPTS
    )


def _photos_claim(*, first: int, limit: int, kind: str) -> Claim | None:
    """Move ``first`` and other waiting photos to processing under a new attempt's token and
    lease; return the claim, or None when this message has nothing to do.

    Nothing is claimed unless ``first`` itself is waiting: each photo has its own message, and
    the others only ride along to fill the batch.

    Photos whose claim's lease ran out (their worker died) count as waiting; photos that used
    up their attempts do not (the sweeper marks them failed). Rows another transaction has
    locked are skipped, never waited for.
    """
    if pipeline_is_paused():
        return None  # the message is dropped; resuming sends every waiting photo again
    now = timezone.now()
    token = uuid.uuid4()
    with transaction.atomic():
        rows = dict(
            Photo.objects.select_for_update(skip_locked=True)
            .filter(photos_claimable(now), kind=kind)
            .order_by(Case(When(pk=first, then=0), default=1), "queued_at", "pk")
            .values_list("pk", "claim_token")[:limit]
        )
        if first not in rows:
            # Its own photo is done or held elsewhere: this message is a duplicate.
            return None
        Photo.objects.filter(pk__in=list(rows)).update(
            status=Photo.Status.PROCESSING,
            processing_started_at=now,
            claim_token=token,
            lease_expires_at=now + timedelta(seconds=settings.MEDIASEARCH_CLAIM_LEASE),
            attempts=F("attempts") + 1,
            updated_at=now,
        )
    photos = list(Photo.objects.filter(pk__in=list(rows)).order_by("pk"))
    unfinished = {pk: old for pk, old in rows.items() if old is not None}
    return Claim(token=token, photos=photos, unfinished=unfinished)


def _photos_release(claim: Claim, *, counted: bool = True) -> None:
    """Give claimed photos back to the queue after a transient error (best effort); unless
    ``counted``, the attempt is given back too (a service's outage, not the photos' fault)."""
    try:
        claim.held().filter(pk__in=claim.ids).update(
            status=Photo.Status.PENDING,
            lease_expires_at=None,
            updated_at=timezone.now(),
            **({} if counted else {"attempts": F("attempts") - 1}),
        )
    except Exception:
        # The database may be the thing that is down; their lease runs out and the sweeper
        # releases them then.
        logger.warning("could not release photos %s; the sweeper will", claim.ids, exc_info=True)
