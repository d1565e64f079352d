"""A still's motion (a Live Photo's MOV, an Android motion photo's MP4): extracted when it is
inside the still, checked, and made playable in a browser when it is not (iPhones record
HEVC, which Chromium does not play). The still itself is embedded like any photo; its motion
never holds it up, and a bad motion fails alone (``motion_status``) with the reason.

Runs on the video queue (a transcode). Safe to run twice: every write is conditional on the
motion still being the one this run started from, and a run that loses removes its files.
"""

from __future__ import annotations

import logging
import tempfile
from datetime import timedelta
from typing import BinaryIO, cast

from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.utils import timezone

from search import dispatch
from search.models import Photo, motion_name
from workers.embedding.live import MotionPhotoError, motion_photo_video
from workers.embedding.video import VideoDecodeError, make_playable_copy, needs_playable_copy
from workers.embedding.video import probe_video as video_probe

logger = logging.getLogger(__name__)

_COPY_CHUNK = 1024 * 1024


def photo_motion_prepare(*, photo_id: int) -> Photo.MotionStatus | None:
    """Make ``photo_id``'s pending motion ready (or failed, with the reason); return the new
    motion status, or None when there was nothing to do (not pending: done already, or the
    photo is gone)."""
    photo = Photo.objects.filter(pk=photo_id, motion_status=Photo.MotionStatus.PENDING).first()
    if photo is None:
        return None
    started_from = photo.motion.name  # "" for a motion photo whose MP4 is still inside it
    written: list[str] = []
    try:
        clip = started_from or _motion_extract(photo, written)
        with default_storage.open(clip, "rb") as opened:
            handle = cast(BinaryIO, opened)
            info = video_probe(handle, max_duration_s=settings.MEDIASEARCH_MAX_MOTION_SECONDS)
            playable = ""
            if needs_playable_copy(info):
                handle.seek(0)
                playable = _playable_store(photo, handle, written)
    except (VideoDecodeError, MotionPhotoError, FileNotFoundError) as exc:
        _delete(written)
        reason = (
            "the motion's file is missing from storage"
            if isinstance(exc, FileNotFoundError)
            else str(exc)
        )
        failed = _pending(photo_id, started_from).update(
            motion_status=Photo.MotionStatus.FAILED,
            motion_failure_reason=f"the motion cannot be played: {reason}"[:2000],
            updated_at=timezone.now(),
        )
        return Photo.MotionStatus.FAILED if failed else None
    except BaseException:
        _delete(written)
        raise
    updated = _pending(photo_id, started_from).update(
        motion=clip,
        motion_playable=playable,
        motion_duration_ms=round(info.duration_s * 1000),
        motion_size_bytes=photo.motion_size_bytes or _size(clip),
        motion_status=Photo.MotionStatus.READY,
        motion_failure_reason="",
        updated_at=timezone.now(),
    )
    if not updated:  # another run finished first, or the photo changed or went meanwhile
        _delete(written)
        return None
    if photo.motion_playable.name and photo.motion_playable.name != playable:
        _delete([photo.motion_playable.name])
    return Photo.MotionStatus.READY


def photos_motion_requeue(*, limit: int = 500) -> list[int]:
    """Ring the video queue again for motions left pending (a lost message, a dead worker)."""
    now = timezone.now()
    before = now - timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER)
    ids = list(
        Photo.objects.filter(motion_status=Photo.MotionStatus.PENDING, motion_queued_at__lt=before)
        .order_by("motion_queued_at")
        .values_list("pk", flat=True)[:limit]
    )
    Photo.objects.filter(pk__in=ids, motion_status=Photo.MotionStatus.PENDING).update(
        motion_queued_at=now
    )
    for photo_id in ids:
        dispatch.prepare_motion(photo_id)
    return ids


def _pending(photo_id: int, started_from: str):
    return Photo.objects.filter(
        pk=photo_id, motion_status=Photo.MotionStatus.PENDING, motion=started_from
    )


def _motion_extract(photo: Photo, written: list[str]) -> str:
    """Copy a motion photo's embedded MP4 out of its original into a file of its own."""
    with photo.file.open("rb") as original:
        offset, length = motion_photo_video(original)
        original.seek(offset)
        with tempfile.TemporaryFile(suffix=".mp4") as clip:
            left = length
            while left > 0:
                chunk = original.read(min(_COPY_CHUNK, left))
                if not chunk:
                    raise MotionPhotoError("the embedded video is cut short")
                clip.write(chunk)
                left -= len(chunk)
            clip.seek(0)
            name = default_storage.save(motion_name(photo), File(clip))
    written.append(name)
    return name


def _playable_store(photo: Photo, source, written: list[str]) -> str:
    with tempfile.TemporaryFile(suffix=".mp4") as copy:
        make_playable_copy(
            source, copy, time_limit_s=settings.MEDIASEARCH_VIDEO_TRANSCODE_TIME_LIMIT
        )
        copy.seek(0)
        name = default_storage.save(motion_name(photo), File(copy))
    written.append(name)
    return name


def _size(name: str) -> int:
    try:
        return default_storage.size(name)
    except OSError:
        return 0


def _delete(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            logger.warning("could not delete %s from storage", name, exc_info=True)
