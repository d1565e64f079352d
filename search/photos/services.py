"""Writes of the photos concern: uploads (with their report) and deletion."""

from __future__ import annotations

import errno
import hashlib
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from functools import partial
from typing import BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.db import IntegrityError, transaction
from django.utils import timezone

from search import dispatch
from search.models import Photo, attempt_files, photo_upload_to
from search.photos.changes import search_choices_changed
from search.photos.live import live_motion_absorb, live_pairing_lock, live_still_for_motion
from search.photos.storage import OBJECT_STORE_OUTAGES, object_store_outages_raised
from workers.embedding.images import ACCEPTED_FORMATS_TEXT, ImageDecodeError, identify_format
from workers.embedding.live import still_motion
from workers.embedding.video import (
    ACCEPTED_VIDEO_FORMATS_TEXT,
    identify_video,
    read_content_identifier,
)

logger = logging.getLogger(__name__)


class PhotoRejected(ValueError):
    """An upload that is refused outright; ``str(error)`` names the file and the reason."""

    def __init__(self, filename: str, reason: str):
        super().__init__(f"{filename}: {reason}")
        self.filename = filename
        self.reason = reason


def too_big_reason(kind: str = "photo") -> str:
    """Why a photo (or a video) over its size limit is refused (the upload page's script
    refuses such files before sending them, with these same words)."""
    if kind == "video":
        limit_mb = settings.MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES // (1024 * 1024)
        return f"the video is larger than the {limit_mb} MB limit"
    limit_mb = settings.MEDIASEARCH_MAX_UPLOAD_BYTES // (1024 * 1024)
    return f"the file is larger than the {limit_mb} MB limit"


@dataclass(frozen=True)
class PhotoCreateResult:
    photo: Photo
    created: bool  # False: the owner already had these exact bytes
    # True: the file was the motion of a Live Photo whose still was there, and ``photo`` is
    # that still (``created`` is then False)
    paired: bool = False


def photo_create(*, owner, file: File) -> PhotoCreateResult:
    """Store an upload and queue it for embedding once the transaction commits.

    The same bytes uploaded twice by one owner give back the existing photo.
    Raises ``PhotoRejected`` for files that are not an image we accept.
    """
    name = display_filename(file.name)
    if file.size is not None and file.size > max(
        settings.MEDIASEARCH_MAX_UPLOAD_BYTES, settings.MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES
    ):
        raise PhotoRejected(name, too_big_reason())  # too big for anything: read no further
    kind, media_format = _media_identify(name, file)
    limit = (
        settings.MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES
        if kind == Photo.Kind.VIDEO
        else settings.MEDIASEARCH_MAX_UPLOAD_BYTES
    )
    if (file.size or 0) > limit:
        raise PhotoRejected(name, too_big_reason(kind))

    digest = _sha256(file)
    existing = Photo.objects.filter(owner=owner, sha256=digest).first()
    if existing is None:
        existing = Photo.objects.filter(owner=owner, motion_sha256=digest).first()
    if existing is not None:
        return PhotoCreateResult(photo=existing, created=False)

    identifier, motion_photo = _motion_identify(kind, media_format, file)
    photo = Photo(
        owner=owner,
        original_filename=name,
        size_bytes=file.size or 0,
        sha256=digest,
        image_format=media_format,
        kind=kind,
        queued_at=timezone.now(),
        content_identifier=identifier,
    )
    if motion_photo:
        photo.motion_status = Photo.MotionStatus.PENDING
        photo.motion_queued_at = photo.queued_at
    _original_store(photo, file, name)
    try:
        with transaction.atomic():
            if identifier:
                live_pairing_lock(owner_id=owner.pk, content_identifier=identifier)
                if kind == Photo.Kind.VIDEO:
                    still, duplicate = live_still_for_motion(motion=photo)
                    if still is not None:
                        if duplicate:
                            photo.file.delete(save=False)
                        return PhotoCreateResult(photo=still, created=False, paired=not duplicate)
            photo.save()
            dispatch.embed_item(photo.pk, photo.kind)
            if identifier and kind == Photo.Kind.PHOTO:
                live_motion_absorb(still=photo)
            if motion_photo:
                dispatch.prepare_motion(photo.pk)
    except IntegrityError:
        # The same bytes arrived twice at once; the other request stored them first.
        photo.file.delete(save=False)
        existing = Photo.objects.get(owner=owner, sha256=digest)
        return PhotoCreateResult(photo=existing, created=False)
    except BaseException:
        photo.file.delete(save=False)
        raise
    return PhotoCreateResult(photo=photo, created=True)


def _motion_identify(kind: str, media_format: str, file: File) -> tuple[str, bool]:
    """A Live Photo half's content identifier (a still's or a MOV's), and whether a still is
    an Android motion photo, from the file's headers."""
    source = cast(BinaryIO, file)
    source.seek(0)
    if kind == Photo.Kind.VIDEO:
        identifier = read_content_identifier(source) if media_format == "MP4" else ""
        return identifier, False
    motion = still_motion(source, media_format)
    return motion.content_identifier, motion.motion_photo


def _media_identify(name: str, file: File) -> tuple[str, str]:
    """The kind and format of an upload, from its first bytes (never its name): an image of
    the allowlist, or a video container. Raises ``PhotoRejected`` for anything else."""
    source = cast(BinaryIO, file)
    try:
        return Photo.Kind.PHOTO, identify_format(
            source, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS
        )
    except ImageDecodeError as exc:
        source.seek(0)
        video = identify_video(source)
        if video is None:
            if (file.size or 0) > settings.MEDIASEARCH_MAX_UPLOAD_BYTES:
                raise PhotoRejected(name, too_big_reason()) from None  # as the page says
            raise PhotoRejected(name, _not_accepted_reason(str(exc))) from None
        return Photo.Kind.VIDEO, video.upper()


def _not_accepted_reason(reason: str) -> str:
    # The image decoder's refusal lists only images; an upload may be a video too.
    if reason.startswith("not a supported image"):
        return (
            f"not a supported image or video (images: {ACCEPTED_FORMATS_TEXT}; "
            f"videos: {ACCEPTED_VIDEO_FORMATS_TEXT})"
        )
    return reason


def _original_store(photo: Photo, file: File, name: str) -> None:
    """Write the original under its generated name; a storage failure (a full disk, an object
    store that does not answer) leaves nothing behind and refuses the file with the reason."""
    storage = photo.file.storage
    target = photo_upload_to(photo, file.name or "upload")
    try:
        with object_store_outages_raised():
            photo.file.name = storage.save(target, file)
    except OBJECT_STORE_OUTAGES as exc:
        logger.error("could not store %s: %s", target, exc)
        # A single PUT that failed stored nothing, and a multipart upload that failed is
        # aborted by boto3; the delete is for a PUT whose answer alone was lost.
        _file_delete_quietly(storage, target)
        reason = (
            "could not be stored: the file store cannot be reached right now "
            "(nothing was kept; try again shortly)"
        )
        raise PhotoRejected(name, reason) from None
    except OSError as exc:
        logger.error("could not store %s: %s", target, exc)
        if storage.exists(target):
            storage.delete(target)  # the part written before the failure
        if exc.errno == errno.ENOSPC:
            reason = "could not be stored: the server's storage is full (nothing was kept)"
        else:
            reason = f"could not be stored ({exc.strerror or exc}); nothing was kept"
        raise PhotoRejected(name, reason) from None


def _file_delete_quietly(storage, name: str) -> None:
    try:
        with object_store_outages_raised():
            storage.delete(name)
    except OBJECT_STORE_OUTAGES:
        logger.warning("could not delete %s from storage either", name)


@dataclass(frozen=True)
class UploadItem:
    """What became of one file of an upload."""

    filename: str  # as the user named it (see ``display_filename``)
    # "created"; "duplicate": the owner already had these bytes; "paired": a Live Photo's
    # motion, joined to its still (``photo``); "rejected"
    outcome: str
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


def photos_create_many(*, owner, files: Sequence[File]) -> UploadReport:
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
        if result.paired:
            # The motion of a Live Photo whose still was there: one item, the still.
            items.append(UploadItem(display_filename(file.name), "paired", photo=result.photo))
            continue
        (created if result.created else duplicates).append(result.photo)
        outcome = "created" if result.created else "duplicate"
        items.append(UploadItem(display_filename(file.name), outcome, photo=result.photo))
    return UploadReport(created=created, duplicates=duplicates, rejected=rejected, items=items)


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
            for field in (
                photo.file,
                photo.thumbnail,
                photo.preview,
                photo.playable,
                photo.motion,
                photo.motion_playable,
            )
            if field.name
        ]
        # An attempt that did not finish may have left renditions that no field points at.
        files += [
            (photo.thumbnail.storage, name)
            for photo in photos
            if photo.claim_token is not None
            for name in attempt_files(photo, photo.claim_token)
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


def _sha256(file: File) -> str:
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
