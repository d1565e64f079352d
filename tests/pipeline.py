"""Running the ingest pipeline's real code in the test process, without a worker."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from search.ingest.services import photos_embed
from search.models import Photo


def embed_waiting(*, batch_size: int | None = None) -> dict[int, Photo.Status]:
    """Embed every waiting photo as a worker does: in batches of ``batch_size`` (the configured
    size unless given), each claimed through the message of its oldest photo, until nothing is
    waiting. Return the new status of each photo embedded.

    Tests upload first and drain once, so several photos really share a forward pass: a batch
    of one could never show a vector written to the wrong photo.
    """
    size = settings.MEDIASEARCH_EMBED_BATCH_SIZE if batch_size is None else batch_size
    if size < 2:
        raise ValueError(f"batch_size must be at least 2 for batches to be tested, not {size}")
    statuses: dict[int, Photo.Status] = {}
    while (first := _oldest_waiting()) is not None:
        handled = photos_embed(photo_id=first, batch_size=size)
        if first not in handled:
            break  # the pipeline is paused, or another transaction holds the photo
        statuses.update(handled)
    return statuses


def _oldest_waiting() -> int | None:
    """The photo whose message a worker would take next: what ``photos_embed`` may claim."""
    stale = timezone.now() - timedelta(seconds=settings.MEDIASEARCH_PROCESSING_TIMEOUT)
    waiting = (
        Q(status=Photo.Status.PENDING)
        | Q(status=Photo.Status.PROCESSING, processing_started_at__lt=stale)
    ) & Q(attempts__lt=settings.MEDIASEARCH_MAX_ATTEMPTS)
    return (
        Photo.objects.filter(waiting)
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )


def photo_embed(*, photo_id: int) -> Photo.Status | None:
    """Embed one photo alone (a batch of one); return its new status, or None if this call left
    it alone.

    Kept only for tests/search/ingest/test_services.py until its owner moves it to
    ``embed_waiting``; a batch of one hides vectors written to the wrong photo, so new tests
    use ``embed_waiting``.
    """
    return photos_embed(photo_id=photo_id, batch_size=1).get(photo_id)
