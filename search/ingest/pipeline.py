"""Staff controls of the ingestion pipeline: pause and resume, retry and delete failures."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable

from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from search import dispatch
from search.models import Photo, Pipeline
from search.photos.services import photos_delete

logger = logging.getLogger(__name__)


def pipeline_is_paused() -> bool:
    return Pipeline.objects.filter(pk=1, paused=True).exists()


def pipeline_pause() -> None:
    """Workers stop claiming photos (what they hold now, they finish); uploads still queue."""
    Pipeline.objects.update_or_create(pk=1, defaults={"paused": True, "paused_at": timezone.now()})


def pipeline_resume() -> int:
    """Workers claim photos again; every waiting photo is re-sent at once. Returns how many."""
    with transaction.atomic():
        Pipeline.objects.update_or_create(pk=1, defaults={"paused": False, "paused_at": None})
        now = timezone.now()
        waiting = list(
            Photo.objects.filter(status=Photo.Status.PENDING).values_list("pk", flat=True)
        )
        Photo.objects.filter(pk__in=waiting).update(queued_at=now, updated_at=now)
        for photo_id in waiting:
            dispatch.embed_photo(photo_id)
    return len(waiting)


def photos_retry(*, photo_ids: Iterable[int] = (), reason: str | None = None) -> int:
    """Give failed photos (these ids, or all failed with ``reason``) a fresh set of attempts.
    Returns how many were queued again."""
    failed = Photo.objects.filter(status=Photo.Status.FAILED)
    failed = (
        failed.filter(failure_reason=reason)
        if reason is not None
        else failed.filter(pk__in=list(photo_ids))
    )
    with transaction.atomic():
        ids = list(failed.select_for_update().values_list("pk", flat=True))
        now = timezone.now()
        Photo.objects.filter(pk__in=ids).update(
            status=Photo.Status.PENDING,
            failure_reason="",
            attempts=0,
            queued_at=now,
            updated_at=now,
        )
        for photo_id in ids:
            dispatch.embed_photo(photo_id)
    return len(ids)


def photos_delete_by_staff(*, photo_ids: Iterable[int]) -> list[int]:
    """Delete photos of any owner (their files go after the commit); returns the deleted ids."""
    by_owner: dict[int, list[int]] = defaultdict(list)
    for pk, owner_id in Photo.objects.filter(pk__in=list(photo_ids)).values_list("pk", "owner"):
        by_owner[owner_id].append(pk)
    deleted: list[int] = []
    owners = get_user_model().objects.in_bulk(list(by_owner))
    with transaction.atomic():
        for owner_id, ids in by_owner.items():
            deleted += photos_delete(owner=owners[owner_id], photo_ids=ids)
    return deleted
