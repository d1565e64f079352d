"""Live Photos: the still and the MOV that share an Apple content identifier become one item,
whichever arrives first, together or days apart.

The item is the still's row; the MOV becomes its ``motion`` (docs/VIDEO.md, Live Photos). A
MOV that arrives first is an ordinary video until its still comes: the still then takes its
file, its albums and its place, and the video row goes. Both halves of one owner's identifier
are paired under one PostgreSQL advisory lock, held by the transaction that stores the second
half, so two uploads racing on two web processes (or workers) make one item: never two, never
an orphan.

Called by ``search.photos.services.photo_create`` inside its transaction.
"""

from __future__ import annotations

import logging
from functools import partial

from django.db import connection, transaction
from django.utils import timezone

from search import dispatch
from search.models import Photo, attempt_files
from search.photos.changes import search_choices_changed

logger = logging.getLogger(__name__)


def live_pairing_lock(*, owner_id: int, content_identifier: str) -> None:
    """Serialise, until the transaction ends, everything that pairs this owner's halves of
    ``content_identifier``. Must be called inside a transaction."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            [f"live-photo:{owner_id}:{content_identifier}"],
        )


def live_still_for_motion(*, motion: Photo) -> tuple[Photo | None, bool]:
    """The still that an arriving MOV (``motion``: unsaved, its file stored) belongs to, now
    given it as its motion; or None, and the MOV is to be kept as a video of its own.

    The second value is True when that still already has these very bytes as its motion (a
    duplicate upload: nothing is changed). A still that already has another motion keeps it;
    the MOV then stays a video. Call under ``live_pairing_lock``.
    """
    still = _other_half(motion, kind=Photo.Kind.PHOTO)
    if still is None:
        return None, False
    if still.motion_sha256 == motion.sha256:
        return still, True
    if still.motion or still.motion_status:
        return None, False
    _motion_attach(still, motion)
    return still, False


def live_motion_absorb(*, still: Photo) -> Photo | None:
    """Give a freshly saved still the MOV of its identifier that arrived before it (a video
    row), if there is one: the still takes the video's original as its motion and its albums,
    and the video row goes (its vectors and tags with it; its other files once the transaction
    commits). Returns the video it absorbed. Call under ``live_pairing_lock``."""
    video = _other_half(still, kind=Photo.Kind.VIDEO)
    if video is None:
        return None
    _motion_attach(still, video)
    still.albums.add(*video.albums.all())
    leftovers = [
        (field.storage, field.name)
        for field in (video.thumbnail, video.preview, video.playable)
        if field.name
    ]
    if video.claim_token is not None:
        # An attempt at the video may be running: whatever it writes it removes itself when it
        # finds the row gone; what a dead one wrote is removed here.
        storage = video.file.storage
        leftovers += [(storage, name) for name in attempt_files(video, video.claim_token)]
    search_choices_changed(photo_ids=[video.pk])
    video.delete()  # its original is now the still's motion: the file stays
    transaction.on_commit(partial(_files_delete, leftovers))
    logger.info("photo %s took over video %s as its Live Photo motion", still.pk, video.pk)
    return video


def _other_half(photo: Photo, *, kind: str) -> Photo | None:
    """The oldest item of ``kind`` with ``photo``'s owner and content identifier, locked."""
    return (
        Photo.objects.select_for_update()
        .filter(owner_id=photo.owner_id, content_identifier=photo.content_identifier, kind=kind)
        .order_by("pk")
        .first()
    )


def _motion_attach(still: Photo, motion: Photo) -> None:
    now = timezone.now()
    fields = {
        "motion": motion.file.name,
        "motion_playable": "",
        "motion_filename": motion.original_filename,
        "motion_sha256": motion.sha256,
        "motion_size_bytes": motion.size_bytes,
        "motion_duration_ms": None,
        "motion_status": Photo.MotionStatus.PENDING,
        "motion_failure_reason": "",
        "motion_queued_at": now,
        "updated_at": now,
    }
    Photo.objects.filter(pk=still.pk).update(**fields)
    for name, value in fields.items():
        setattr(still, name, value)
    dispatch.prepare_motion(still.pk)


def _files_delete(files: list[tuple]) -> None:
    for storage, name in files:
        try:
            storage.delete(name)
        except Exception:
            logger.warning("could not delete %s from storage", name, exc_info=True)
