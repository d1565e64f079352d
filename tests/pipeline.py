"""Running the ingest pipeline's real code in the test process, without a worker."""

from __future__ import annotations

from django.conf import settings
from django.utils import timezone

from search.ingest.services import photos_claimable, photos_embed
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
    return (
        Photo.objects.filter(photos_claimable(timezone.now()))
        .order_by("queued_at", "pk")
        .values_list("pk", flat=True)
        .first()
    )
