"""The only place that sends Celery messages.

Every message is sent by task name (``workers.task_names``), once the transaction that made
the work commits (at once outside a transaction), so a worker never looks for a row that is
not there yet. The database is the source of truth and the queue only its doorbell: a message
that cannot be sent (Redis is down) is logged and left to the sweeper, which re-sends whatever
the database says is still waiting.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial

from django.db import transaction

from mediasearch.celery import app
from workers import task_names

logger = logging.getLogger(__name__)


def embed_photo(photo_id: int) -> None:
    """Ask a worker to embed a pending photo (with other waiting photos in its batch)."""
    _on_commit(task_names.EMBED_PHOTO, photo_id)


def embed_video(photo_id: int) -> None:
    """Ask a video worker (its own queue) to embed a pending video."""
    _on_commit(task_names.EMBED_VIDEO, photo_id)


def prepare_motion(photo_id: int) -> None:
    """Ask a video worker to extract, check and make playable a still's motion (a Live
    Photo's MOV, a motion photo's MP4)."""
    _on_commit(task_names.PREPARE_MOTION, photo_id)


def embed_item(photo_id: int, kind: str) -> None:
    """``embed_photo`` or ``embed_video``, by the item's kind."""
    (embed_video if kind == "video" else embed_photo)(photo_id)


def find_near_duplicates(photo_ids: Sequence[int], model_id: str) -> None:
    """Ask a worker to record the near-duplicate pairs of freshly embedded photos."""
    _on_commit(task_names.FIND_NEAR_DUPLICATES, list(photo_ids), model_id)


def read_photo_text(photo_id: int) -> None:
    """Ask an OCR worker (the ``ocr`` queue) to read a ready photo's text."""
    _on_commit(task_names.READ_PHOTO_TEXT, photo_id)


def reembed_photos(photo_ids: Sequence[int]) -> None:
    """Ask a worker to recompute the active model's vectors of these ready photos."""
    _on_commit(task_names.REEMBED_PHOTOS, list(photo_ids))


def retag_photos(photo_ids: Sequence[int]) -> None:
    """Ask a worker to recompute these photos' tags from their stored vectors."""
    _on_commit(task_names.RETAG_PHOTOS, list(photo_ids))


def model_step(task: str, model_pk: int, *, countdown: float | None = None) -> None:
    """Ask a worker to run one step of a model switch (a ``task_names.MODEL_*``), at once or
    ``countdown`` seconds from now."""
    _on_commit(task, model_pk, countdown=countdown)


def _on_commit(task: str, *args: object, countdown: float | None = None) -> None:
    transaction.on_commit(partial(_send, task, args, countdown))


def _send(task: str, args: tuple[object, ...], countdown: float | None = None) -> None:
    try:
        # A signature runs eagerly when the app is configured so (tests), like ``delay``.
        app.signature(task, args=args).apply_async(countdown=countdown)
    except Exception:
        logger.warning(
            "could not send %s%r; the sweeper re-sends what is waiting", task, args, exc_info=True
        )
