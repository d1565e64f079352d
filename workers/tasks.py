"""Celery entry points: thin, take ids, classify errors, call a service.

Bad image data and bugs are handled inside the embedding service (the photo fails alone, with
the reason). Outages (``search.ingest.errors.TRANSIENT_ERRORS``) are retried with exponential
backoff and jitter; the sweeper picks up whatever still slips through.
"""

from __future__ import annotations

import logging

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from search.duplicates.services import near_duplicate_pairs_find
from search.ingest import model_switch
from search.ingest.errors import INTERRUPTIONS, TRANSIENT_ERRORS
from search.ingest.model_switch import embed_missing
from search.ingest.motion import photo_motion_prepare, photos_motion_requeue
from search.ingest.pipeline import pipeline_is_paused
from search.ingest.services import photos_embed, photos_embed_ready, photos_requeue_stalled
from search.models import Photo
from search.tags.services import photos_retag
from search.text.services import photo_text_fail, photo_text_read, text_readings_requeue
from workers import signals, task_names  # noqa: F401  (connects the worker start-up hook)
from workers.active_engine import get_engine

logger = logging.getLogger(__name__)

MAX_RETRIES = 8
# Every task: acknowledged only once done, transient errors retried with backoff and jitter.
RETRYING = dict(
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)


@shared_task(name=task_names.EMBED_PHOTO, bind=True, **RETRYING)
def embed_photo(self, photo_id: int) -> str | None:
    """Embed a photo, with other waiting photos in the same batch. Safe to run twice.

    Returns the photo's new status, if this call changed it.
    """
    return _embed(
        self, photo_id, batch_size=settings.MEDIASEARCH_EMBED_BATCH_SIZE, kind=Photo.Kind.PHOTO
    )


def _embed(task, photo_id: int, *, batch_size: int, kind: str) -> str | None:
    try:
        status = photos_embed(photo_id=photo_id, batch_size=batch_size, kind=kind).get(photo_id)
    except TRANSIENT_ERRORS:
        if task.request.retries >= MAX_RETRIES:
            # A long outage is no reason to fail a photo for good: it is pending again (or
            # will be, once the database is back) and the sweeper re-sends it later, until its
            # attempts are used up.
            logger.warning("%s %s: still failing after %d retries; leaving it to the sweeper",
                           kind, photo_id, MAX_RETRIES, exc_info=True)  # fmt: skip
            return None
        raise
    except INTERRUPTIONS:
        # The time limit: the batch was given back, and counts as an attempt that did not
        # finish; the sweeper re-sends it.
        logger.warning("%s %s: the batch ran out of time; given back", kind, photo_id)
        return None
    return str(status) if status else None


@shared_task(
    name=task_names.EMBED_VIDEO,
    bind=True,
    soft_time_limit=settings.MEDIASEARCH_VIDEO_TASK_TIME_LIMIT - 30,
    time_limit=settings.MEDIASEARCH_VIDEO_TASK_TIME_LIMIT,
    **RETRYING,
)
def embed_video(self, photo_id: int) -> str | None:
    """Embed a video: its keyframes, poster and playable copy. Safe to run twice; a worker
    killed mid-video leaves it to be taken again once its lease runs out."""
    return _embed(self, photo_id, batch_size=1, kind=Photo.Kind.VIDEO)


@shared_task(
    name=task_names.PREPARE_MOTION,
    soft_time_limit=settings.MEDIASEARCH_VIDEO_TASK_TIME_LIMIT - 30,
    time_limit=settings.MEDIASEARCH_VIDEO_TASK_TIME_LIMIT,
    **RETRYING,
)
def prepare_motion(photo_id: int) -> str | None:
    """Extract, check and make playable a still's motion (Live Photo, motion photo). Safe to
    run twice. Returns the motion's new status, if this call changed it."""
    try:
        status = photo_motion_prepare(photo_id=photo_id)
    except INTERRUPTIONS:
        logger.warning("motion of photo %s ran out of time; the sweeper re-sends it", photo_id)
        return None
    return str(status) if status else None


@shared_task(name=task_names.FIND_NEAR_DUPLICATES, **RETRYING)
def find_near_duplicates(photo_ids: list[int], model_id: str) -> int:
    """Record the near-duplicate pairs of freshly embedded photos. Safe to run twice.

    Sent once their vectors are committed, so of two batches committing together the later one's
    search sees the earlier one. Returns how many pairs were written.
    """
    return near_duplicate_pairs_find(photo_ids=photo_ids, model_id=model_id)


@shared_task(name=task_names.SWEEP_PHOTOS)
def sweep_photos() -> int:
    """Periodic: re-send photos left pending or stuck in processing, and backfill ready photos
    that lack the active model's vector; return how many photos were re-sent."""
    requeued = len(photos_requeue_stalled())
    if not pipeline_is_paused():
        requeued += len(photos_motion_requeue())
        embed_missing()
        model_switch.model_switch_nudge()
        text_readings_requeue()
    return requeued


@shared_task(
    name=task_names.READ_PHOTO_TEXT,
    bind=True,
    soft_time_limit=settings.MEDIASEARCH_OCR_TASK_TIME_LIMIT - 15,
    time_limit=settings.MEDIASEARCH_OCR_TASK_TIME_LIMIT,
    **RETRYING,
)
def read_photo_text(self, photo_id: int) -> str | None:
    """Read a ready photo's text (OCR queue). Safe to run twice. A failure of any kind marks
    only the reading failed: the photo, its vector and its CLIP search are untouched."""
    try:
        return photo_text_read(photo_id=photo_id)
    except SoftTimeLimitExceeded:
        return photo_text_fail(photo_id=photo_id, reason="reading the text ran out of time")


# Model switch steps: each takes the ClipModel row's id, checks its state first, and is safe to
# run twice (see search.ingest.model_switch).
@shared_task(name=task_names.MODEL_PREPARE, **RETRYING)
def model_prepare(model_pk: int) -> None:
    model_switch.model_prepare(model_pk=model_pk)


@shared_task(name=task_names.MODEL_BACKFILL, **RETRYING)
def model_backfill(model_pk: int) -> int:
    return model_switch.model_backfill(model_pk=model_pk)


@shared_task(name=task_names.MODEL_RETIRE, **RETRYING)
def model_retire(model_pk: int) -> int:
    return model_switch.model_retire(model_pk=model_pk)


@shared_task(name=task_names.MODEL_AFTER_SWITCH, **RETRYING)
def model_after_switch(model_pk: int) -> None:
    model_switch.model_after_switch(model_pk=model_pk)


@shared_task(name=task_names.REEMBED_PHOTOS, **RETRYING)
def reembed_photos(photo_ids: list[int]) -> int:
    """Recompute the active model's vectors of these ready photos. Safe to run twice."""
    photos = list(Photo.objects.filter(pk__in=photo_ids, status=Photo.Status.READY))
    return photos_embed_ready(engine=get_engine(), photos=photos, renditions=True)


@shared_task(name=task_names.RETAG_PHOTOS, **RETRYING)
def retag_photos(photo_ids: list[int]) -> int:
    """Recompute these photos' tags from their stored vectors under this worker's model (after
    a vocabulary change). Safe to run twice. Returns how many photos' tags changed."""
    return photos_retag(model_id=get_engine().model_id, photo_ids=photo_ids).changed
