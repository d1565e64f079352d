"""Running the ingest pipeline's real code in the test process, without a worker."""

from __future__ import annotations

from search.ingest.services import photos_embed
from search.models import Photo


def photo_embed(*, photo_id: int) -> Photo.Status | None:
    """Embed one photo as a worker would (a batch of one); return its new status, or None if
    this call left it alone."""
    return photos_embed(photo_id=photo_id, batch_size=1).get(photo_id)
