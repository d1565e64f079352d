"""Reads: searches, lists and dashboard figures, returned as small frozen dataclasses."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Value
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, VectorField

from search.models import Embedding, NearDuplicatePair, Photo
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


def photos_owned_by(*, user, photo_ids: Sequence[int]) -> list[Photo] | None:
    """The user's photos with these ids, in that order; None unless every one is theirs."""
    photos = Photo.objects.filter(owner=user).in_bulk(photo_ids)
    if len(photos) != len(set(photo_ids)):
        return None
    return [photos[pk] for pk in photo_ids]


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


@dataclass(frozen=True)
class DuplicatePhoto:
    photo: Photo
    nearest: float  # cosine distance to the closest other photo of its group


@dataclass(frozen=True)
class DuplicateGroup:
    photos: list[DuplicatePhoto]  # most pixels first (the copy most worth keeping), then oldest
    closest: float  # the smallest distance between two of its photos


@dataclass(frozen=True)
class DuplicateGroupPage:
    groups: list[DuplicateGroup]
    number: int  # this page, from 1
    num_pages: int
    group_count: int  # on all pages
    photo_count: int  # on all pages

    @property
    def has_previous(self) -> bool:
        return self.number > 1

    @property
    def has_next(self) -> bool:
        return self.number < self.num_pages


def near_duplicate_groups(
    *, user, model_id: str, max_distance: float, page: int = 1, per_page: int = 20
) -> DuplicateGroupPage:
    """The user's photos grouped by near-duplicate pairs within ``max_distance`` under
    ``model_id``: largest groups first, then the closest. Only the user's own photos, staff too.

    Photos are grouped transitively (a near b, b near c: one group of three), so a group may hold
    two photos farther apart than ``max_distance``. A page number out of range gives the last.
    """
    pairs = list(
        NearDuplicatePair.objects.filter(
            model_id=model_id, distance__lte=max_distance, photo__owner=user, other__owner=user
        ).values_list("photo_id", "other_id", "distance")
    )
    nearest: dict[int, float] = {}
    for first, second, distance in pairs:
        for photo_id in (first, second):
            nearest[photo_id] = min(distance, nearest.get(photo_id, math.inf))
    groups = sorted(
        connected_groups((first, second) for first, second, _ in pairs),
        key=lambda group: (-len(group), min(nearest[pk] for pk in group), min(group)),
    )
    num_pages = max(1, math.ceil(len(groups) / per_page))
    number = min(max(1, page), num_pages)
    shown = groups[(number - 1) * per_page : number * per_page]
    photos = Photo.objects.in_bulk([pk for group in shown for pk in group])
    return DuplicateGroupPage(
        groups=[
            DuplicateGroup(
                photos=sorted(
                    (DuplicatePhoto(photo=photos[pk], nearest=nearest[pk]) for pk in group),
                    key=lambda item: (
                        -((item.photo.width or 0) * (item.photo.height or 0)),
                        -item.photo.size_bytes,
                        item.photo.created_at,
                        item.photo.pk,
                    ),
                ),
                closest=min(nearest[pk] for pk in group),
            )
            for group in shown
        ],
        number=number,
        num_pages=num_pages,
        group_count=len(groups),
        photo_count=sum(len(group) for group in groups),
    )


def connected_groups(pairs: Iterable[tuple[int, int]]) -> list[list[int]]:
    """The connected components of ``pairs`` (union-find), each sorted, of two or more ids."""
    parent: dict[int, int] = {}

    def root(node: int) -> int:
        parent.setdefault(node, node)
        while parent[node] != node:
            parent[node] = parent[parent[node]]  # path halving keeps the trees flat
            node = parent[node]
        return node

    for first, second in pairs:
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    members: dict[int, list[int]] = {}
    for node in parent:
        members.setdefault(root(node), []).append(node)
    return [sorted(group) for group in members.values()]
