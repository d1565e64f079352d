"""Writes of the tags concern: a photo's zero-shot tags under a model, and re-tagging from
stored vectors."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction

from search.models import (
    Embedding,
    PhotoTag,
)
from search.photos.changes import search_choices_changed
from workers.active_engine import get_engine, get_tagger
from workers.embedding.tags import Tags, VocabularyError

logger = logging.getLogger(__name__)


def vector_tags(vectors, *, model_id: str) -> list[Tags] | None:
    """Tags for freshly encoded vectors, or None when they cannot be had now.

    A vocabulary file that cannot be read never holds up the vectors: the photos are stored
    untagged (or keep their old tags) and ``retag_photos`` catches up once it is fixed.
    """
    engine = get_engine()
    if engine.model_id != model_id:
        return None
    try:
        tagger = get_tagger(engine)
    except VocabularyError:
        logger.exception("photos stored without tags")
        return None
    return tagger.tags(vectors, min_score=settings.MEDIASEARCH_TAG_MIN_SCORE)


def photo_tags_replace(*, model_id: str, tags_by_photo: Mapping[int, Tags]) -> int:
    """Make each photo's tags under ``model_id`` exactly the given (name, score) pairs.

    Tags of other models are left alone. Returns how many photos' tag names changed (a new
    score for the same name does not count). Safe to run twice: the second call changes nothing.
    """
    wanted = {photo_id: {name for name, _ in tags} for photo_id, tags in tags_by_photo.items()}
    with transaction.atomic():
        existing = PhotoTag.objects.filter(model_id=model_id, photo_id__in=list(wanted))
        before: dict[int, set[str]] = {}
        stale = []
        for pk, photo_id, name in existing.values_list("pk", "photo_id", "name"):
            before.setdefault(photo_id, set()).add(name)
            if name not in wanted[photo_id]:
                stale.append(pk)
        if stale:
            PhotoTag.objects.filter(pk__in=stale).delete()
        PhotoTag.objects.bulk_create(
            [
                PhotoTag(photo_id=photo_id, model_id=model_id, name=name, score=score)
                for photo_id, tags in tags_by_photo.items()
                for name, score in tags
            ],
            update_conflicts=True,
            unique_fields=["photo", "model_id", "name"],
            update_fields=["score"],
        )
    return sum(before.get(photo_id, set()) != names for photo_id, names in wanted.items())


@dataclass(frozen=True)
class RetagResult:
    photos: int  # photos with a vector under the model, whose tags were recomputed
    changed: int  # of those, photos whose tag names changed


def _unit(vector: np.ndarray) -> np.ndarray:
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def photos_retag(
    *, model_id: str, photo_ids: Iterable[int] | None = None, batch_size: int = 500
) -> RetagResult:
    """Recompute the tags of photos (all, or ``photo_ids``) from their stored vectors under
    ``model_id`` and the active vocabulary: no image is decoded, no image tower runs.

    Run it after the vocabulary or the minimum score changed. Photos without a vector under
    ``model_id`` are skipped. Each batch is one transaction that holds the photos' vector rows,
    so a worker embedding one of them at the same time writes its tags before or after, never
    in between. Safe to run twice. Raises ``ValueError`` when ``model_id`` is not the model
    this process runs (its text tower encodes the vocabulary) and ``VocabularyError`` when the
    vocabulary cannot be read.
    """
    engine = get_engine()
    if engine.model_id != model_id:
        raise ValueError(
            f"tags under {model_id} need that model; this process runs {engine.model_id}"
        )
    tagger = get_tagger(engine)
    minimum = settings.MEDIASEARCH_TAG_MIN_SCORE
    vectors = Embedding.objects.filter(model_id=model_id).order_by("photo_id")
    if photo_ids is not None:
        vectors = vectors.filter(photo_id__in=list(photo_ids))
    photos = changed = 0
    after = 0
    while True:
        with transaction.atomic():
            ids = list(
                vectors.filter(photo_id__gt=after)
                .values_list("photo_id", flat=True)
                .distinct()[:batch_size]
            )
            if not ids:
                break
            rows = list(
                vectors.select_for_update()
                .filter(photo_id__in=ids)
                .values_list("photo_id", "vector")
            )
            # A video has a vector per moment; its tags come from their mean, as when embedded.
            by_photo: dict[int, list[np.ndarray]] = {}
            for photo_id, vector in rows:
                by_photo.setdefault(photo_id, []).append(np.asarray(vector, dtype=np.float32))
            summaries = [_unit(np.mean(group, axis=0)) for group in by_photo.values()]
            tags = tagger.tags(np.stack(summaries), min_score=minimum)
            changed += photo_tags_replace(
                model_id=model_id, tags_by_photo=dict(zip(by_photo, tags, strict=True))
            )
        photos += len(ids)
        after = ids[-1]
    if changed:
        search_choices_changed()  # the tag filter's names and counts
    return RetagResult(photos=photos, changed=changed)
