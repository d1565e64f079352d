"""Celery entry points: thin, take ids, classify errors, call a service.

Bad image data is handled inside the service (the photo is marked failed, never retried).
Anything that escapes it is transient by nature (database, broker, storage) and retried with
exponential backoff and jitter; the sweeper picks up whatever still slips through.
"""

from __future__ import annotations

import logging

from celery import shared_task
from django.conf import settings
from django.db import DatabaseError, InterfaceError, OperationalError

from search.services import photo_mark_failed, photos_embed, photos_requeue_stalled
from workers import signals  # noqa: F401  (connects the worker start-up hook)

logger = logging.getLogger(__name__)

TRANSIENT_ERRORS = (OperationalError, InterfaceError, DatabaseError, OSError, ConnectionError)
MAX_RETRIES = 8


@shared_task(
    bind=True,
    acks_late=True,
    autoretry_for=TRANSIENT_ERRORS,
    retry_backoff=2,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=MAX_RETRIES,
)
def embed_photo(self, photo_id: int) -> str | None:
    """Embed a photo, with other waiting photos in the same batch. Safe to run twice.

    Returns the photo's new status, if this call changed it.
    """
    try:
        status = photos_embed(
            photo_id=photo_id, batch_size=settings.MEDIASEARCH_EMBED_BATCH_SIZE
        ).get(photo_id)
    except TRANSIENT_ERRORS as exc:
        if self.request.retries >= MAX_RETRIES:
            photo_mark_failed(
                photo_id=photo_id, reason=f"gave up after {MAX_RETRIES} retries: {exc}"
            )
            return "failed"
        raise
    except Exception as exc:
        # A bug, not bad input and not an outage: retrying would only repeat it.
        logger.exception("embedding photo %s crashed", photo_id)
        photo_mark_failed(photo_id=photo_id, reason=f"internal error: {exc!r}")
        return "failed"
    return str(status) if status else None


@shared_task
def sweep_photos() -> int:
    """Periodic: re-send photos left pending or stuck in processing; return how many."""
    return len(photos_requeue_stalled())
