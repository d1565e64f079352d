"""Reads: searches, lists and dashboard figures, returned as small frozen dataclasses."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Value
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from search.models import Album, ApiToken, Embedding, Photo
from workers.embedding.active import get_engine

if TYPE_CHECKING:
    from PIL.Image import Image


@dataclass(frozen=True)
class SearchHit:
    photo: Photo
    score: float  # cosine similarity, 1.0 = same direction


def photo_search_by_text(*, user, text: str, limit: int | None = None) -> list[SearchHit]:
    """The user's photos ranked by similarity to a description, best first."""
    engine = get_engine()
    vector = engine.encode_texts([text])[0]
    return photo_search_by_vector(user=user, vector=vector, model_id=engine.model_id, limit=limit)


def photo_search_by_image(*, user, image: Image, limit: int | None = None) -> list[SearchHit]:
    """The user's photos most similar to an image that is not stored."""
    engine = get_engine()
    vector = engine.encode_images([image])[0]
    return photo_search_by_vector(user=user, vector=vector, model_id=engine.model_id, limit=limit)


def photo_similar_to(*, user, photo: Photo, limit: int | None = None) -> list[SearchHit]:
    """The user's photos most similar to one of theirs, from its stored vector (no model call).

    Empty when the photo has no vector under the active model yet.
    """
    model_id = get_engine().model_id
    stored = Embedding.objects.filter(photo=photo, model_id=model_id).values_list(
        "vector", flat=True
    )
    vector = stored.first()
    if vector is None:
        return []
    return photo_search_by_vector(
        user=user, vector=vector, model_id=model_id, limit=limit, exclude_photo_id=photo.pk
    )


def photo_search_by_vector(
    *,
    user,
    vector: Sequence[float] | np.ndarray,
    model_id: str,
    limit: int | None = None,
    exclude_photo_id: int | None = None,
) -> list[SearchHit]:
    """Nearest neighbours of ``vector`` among the user's ready photos, through the HNSW index."""
    queryset = _nearest_queryset(
        user=user, vector=vector, model_id=model_id, exclude_photo_id=exclude_photo_id
    )
    limit = limit or settings.MEDIASEARCH_SEARCH_LIMIT
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SET LOCAL hnsw.ef_search = %s", [max(settings.MEDIASEARCH_HNSW_EF_SEARCH, limit)]
        )
        # Keep scanning the index until enough rows pass the owner filter; relaxed order is
        # re-sorted below.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        rows = list(queryset[:limit])
    rows.sort(key=lambda embedding: embedding.distance)
    return [SearchHit(photo=row.photo, score=1.0 - float(row.distance)) for row in rows]


def _nearest_queryset(*, user, vector, model_id: str, exclude_photo_id: int | None = None):
    dim = len(vector)
    # Must match the expression of the model's partial HNSW index (search.vector_index).
    column = Cast("vector", VectorField(dimensions=dim))
    query = Cast(Value(_vector_literal(vector)), VectorField(dimensions=dim))
    queryset = (
        Embedding.objects.filter(model_id=model_id, photo__status=Photo.Status.READY)
        .select_related("photo")
        .annotate(distance=CosineDistance(column, query))
        .filter(photo__owner=user)
        .order_by("distance")
    )
    if exclude_photo_id is not None:
        queryset = queryset.exclude(photo_id=exclude_photo_id)
    return queryset


def explain_nearest(*, user, vector, model_id: str, limit: int = 10) -> str:
    """The query plan of a nearest-neighbour search (to check that the index is used)."""
    queryset = _nearest_queryset(user=user, vector=vector, model_id=model_id)[:limit]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        return queryset.explain()


def _vector_literal(vector) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"


def photo_list_for(*, user):
    """The user's photos, newest first."""
    return Photo.objects.filter(owner=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class FailureRow:
    photo_id: int
    filename: str
    owner: str
    reason: str
    attempts: int
    at: datetime


@dataclass(frozen=True)
class DashboardStats:
    total: int
    by_status: dict[str, int]
    latest_failures: list[FailureRow]
    embeddings_by_model: dict[str, int]


def dashboard_stats(*, failures: int = 20) -> DashboardStats:
    """Pipeline figures for staff: one aggregate query per table, not one per row."""
    counts = dict(
        Photo.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    by_status = {status.value: counts.get(status.value, 0) for status in Photo.Status}
    failed = (
        Photo.objects.filter(status=Photo.Status.FAILED)
        .select_related("owner")
        .order_by("-processed_at", "-id")[:failures]
    )
    rows = [
        FailureRow(
            photo_id=photo.pk,
            filename=photo.original_filename,
            owner=photo.owner.get_username(),
            reason=photo.failure_reason,
            attempts=photo.attempts,
            at=photo.processed_at or photo.updated_at,
        )
        for photo in failed
    ]
    per_model = dict(
        Embedding.objects.order_by()
        .values_list("model_id")
        .annotate(n=Count("id"))
        .values_list("model_id", "n")
    )
    return DashboardStats(
        total=sum(by_status.values()),
        by_status=by_status,
        latest_failures=rows,
        embeddings_by_model=per_model,
    )


def api_tokens_for(*, user):
    """The user's API tokens, newest first (their hashes, never the tokens)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class AccountSummary:
    photos: int
    photos_by_status: dict[str, int]
    albums: int  # owned
    shared_albums: int  # shared with the user by others


def account_summary(*, user) -> AccountSummary:
    """What one user has: their photos by state and their albums."""
    counts = dict(
        Photo.objects.filter(owner=user)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    by_status = {status.value: counts.get(status.value, 0) for status in Photo.Status}
    return AccountSummary(
        photos=sum(by_status.values()),
        photos_by_status=by_status,
        albums=Album.objects.filter(owner=user).count(),
        shared_albums=Album.objects.filter(shared_with=user).count(),
    )
