"""Recording near-duplicate pairs: nearest neighbours by vector, confirmed by thumbnail
pixels (docs/DUPLICATES.md)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from django.conf import settings
from django.db import transaction

from search.models import (
    Embedding,
    NearDuplicatePair,
    Photo,
)
from search.retrieval.query import Media, SearchFilters
from search.retrieval.selectors import photos_nearest
from workers.embedding.images import (
    decode_image,
)
from workers.embedding.pixels import pixel_correlation, pixel_signature

logger = logging.getLogger(__name__)

# How many of a photo's nearest neighbours may be its near-duplicates. More copies than this of
# one picture still end in one group, linked through each other's neighbours.
NEAR_DUPLICATE_NEIGHBOURS = 20


def near_duplicate_pairs_find(*, photo_ids: Sequence[int], model_id: str) -> int:
    """Record which of their owner's photos each photo nearly duplicates under ``model_id``.

    A candidate is one of the photo's nearest neighbours (through the HNSW index) within
    ``MEDIASEARCH_DUPLICATE_MAX_DISTANCE``; it is recorded only if the two thumbnails also
    correlate by at least ``MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION``, which tells a copy
    from another picture of the same things. Photos without a vector under ``model_id`` are
    skipped. Safe to run twice (an upsert); return how many pairs were written.
    """
    embeddings = (
        Embedding.objects.filter(
            photo_id__in=photo_ids, model_id=model_id, photo__status=Photo.Status.READY
        )
        .exclude(photo__kind=Photo.Kind.VIDEO)  # pairs are of stills; videos are not compared
        .select_related("photo__owner")
        .order_by("photo_id")
    )
    max_distance = settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE
    signatures: dict[int, np.ndarray | None] = {}
    found: dict[tuple[int, int], float] = {}
    for embedding in embeddings:
        photo = embedding.photo
        hits = photos_nearest(
            user=photo.owner,
            vector=embedding.vector,
            model_id=model_id,
            # Only the owner's own photos: never one from an album shared with them.
            filters=SearchFilters(owner_id=photo.owner_id, media=Media.PHOTOS),
            limit=NEAR_DUPLICATE_NEIGHBOURS,
            exclude_photo_id=photo.pk,
        ).hits
        for hit in hits:
            distance = max(0.0, 1.0 - hit.score)
            key = (min(photo.pk, hit.photo.pk), max(photo.pk, hit.photo.pk))
            if distance > max_distance or key in found:
                continue
            if _pixels_match(photo, hit.photo, signatures):
                found[key] = distance
    if not found:
        return 0
    with transaction.atomic():
        # Lock both ends so that a photo deleted meanwhile is left out instead of failing the
        # insert; in id order, like photos_delete, so that neither waits on the other in a cycle.
        alive = set(
            Photo.objects.select_for_update(no_key=True)
            .filter(pk__in={pk for key in found for pk in key})
            .order_by("pk")
            .values_list("pk", flat=True)
        )
        rows = [
            NearDuplicatePair(photo_id=first, other_id=second, model_id=model_id, distance=d)
            for (first, second), d in sorted(found.items())
            if first in alive and second in alive
        ]
        NearDuplicatePair.objects.bulk_create(
            rows,
            update_conflicts=True,
            unique_fields=["photo", "other", "model_id"],
            update_fields=["distance"],
        )
    return len(rows)


def _pixels_match(photo: Photo, other: Photo, signatures: dict[int, np.ndarray | None]) -> bool:
    for item in (photo, other):
        if item.pk not in signatures:
            signatures[item.pk] = _thumbnail_signature(item)
    first, second = signatures[photo.pk], signatures[other.pk]
    if first is None or second is None:
        return False
    minimum = settings.MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION
    return pixel_correlation(first, second) >= minimum


def _thumbnail_signature(photo: Photo) -> np.ndarray | None:
    try:
        with photo.thumbnail.open("rb") as handle:
            return pixel_signature(decode_image(handle))
    except (FileNotFoundError, ValueError) as exc:
        # No thumbnail to compare (missing, or unreadable): no pair rather than a false one.
        logger.warning("photo %s: no thumbnail to compare for near-duplicates: %s", photo.pk, exc)
        return None
