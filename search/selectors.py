"""Reads: searches, lists and dashboard figures, returned as small frozen dataclasses."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache, partial
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.cache import cache
from django.db import connection, transaction
from django.db.models import Count, Q, QuerySet, Value
from django.db.models.functions import Cast
from django.utils import timezone
from pgvector.django import CosineDistance, HalfVectorField, VectorField

from search.models import Album, ApiToken, Embedding, NearDuplicatePair, Photo, PhotoTag, SearchLog
from search.query import NO_FILTERS, SearchFilters, Sort, Strictness, combine_vectors, parse_query
from search.relevance import min_score, text_weight_with_image
from workers.embedding.active import get_engine

if TYPE_CHECKING:
    from PIL.Image import Image

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchHit:
    photo: Photo
    score: float  # cosine similarity, 1.0 = same direction


@dataclass(frozen=True)
class Ranked:
    """A ranked photo before its row is loaded: what ordering and cut-offs need."""

    photo_id: int
    score: float
    taken_at: datetime | None


class SearchHits(Sequence[SearchHit]):
    """Ranked photos whose rows are loaded only for the slice that is read.

    A search ranks up to ``MEDIASEARCH_SEARCH_MAX_RESULTS`` photos so that its pages are cut
    from one stable order, but a page shows 60: building every Photo was most of a search's
    time. ``len()`` and scores need no query; reading a slice loads its photos in one query
    (a photo deleted since the ranking is left out).
    """

    def __init__(self, ranked: Sequence[Ranked]) -> None:
        self.ranked = list(ranked)

    def __len__(self) -> int:
        return len(self.ranked)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._load(self.ranked[index])
        loaded = self._load([self.ranked[index]])
        if not loaded:
            raise IndexError(f"photo {self.ranked[index].photo_id} no longer exists")
        return loaded[0]

    def __iter__(self):
        return iter(self._load(self.ranked))

    def __repr__(self) -> str:
        return f"<SearchHits: {len(self)} ranked>"

    @staticmethod
    def _load(ranked: Sequence[Ranked]) -> list[SearchHit]:
        photos = Photo.objects.in_bulk([row.photo_id for row in ranked])
        return [
            SearchHit(photo=photos[row.photo_id], score=row.score)
            for row in ranked
            if row.photo_id in photos
        ]


@dataclass(frozen=True)
class SearchOutcome:
    hits: SearchHits  # the good matches, in the order asked for
    kind: str  # a SearchLog.Kind value
    min_score: float | None  # the cut-off applied; None when everything is shown
    hidden: int  # ranked photos left out as weak matches
    best_hidden_score: float | None
    latency_ms: float
    exact: bool  # an exact scan rather than the HNSW index

    @property
    def top_score(self) -> float | None:
        return max((row.score for row in self.hits.ranked), default=None)


class SearchError(ValueError):
    """A query that cannot be run as asked; ``str(error)`` says why, for the user."""


def photos_visible_to(user) -> QuerySet[Photo]:
    """Photos ``user`` may see: their own and those in albums shared with them; staff see all."""
    return Photo.objects.filter(_visible(user))


def _visible(user, prefix: str = "") -> Q:
    if user.is_staff:
        return Q()
    own = Q(**{f"{prefix}owner": user})
    # Most users have no shared albums; a plain owner condition keeps the query plan simple
    # enough for the planner to walk the HNSW index.
    if not Album.objects.filter(shared_with=user).exists():
        return own
    shared = Album.photos.through.objects.filter(album__shared_with=user).values("photo_id")
    return own | Q(**{f"{prefix}pk__in": shared})


def albums_visible_to(user) -> QuerySet[Album]:
    """Albums ``user`` owns or that are shared with them (staff: all), with photo counts."""
    albums = (
        Album.objects.all()
        if user.is_staff
        else Album.objects.filter(Q(owner=user) | Q(shared_with=user)).distinct()
    )
    return albums.select_related("owner").annotate(photo_count=Count("photos", distinct=True))


def photo_search(
    *,
    user,
    text: str = "",
    image: Image | None = None,
    similar_to: Photo | None = None,
    filters: SearchFilters = NO_FILTERS,
    strictness: Strictness = Strictness.NORMAL,
    sort: Sort = Sort.RELEVANCE,
) -> SearchOutcome:
    """Rank the photos ``user`` may see against a description, an image, a photo of theirs, or
    a combination (see ``search.query``), keep the good matches, and order them.

    ``similar_to`` uses the photo's stored vector: no model call. Raises ``SearchError`` for a
    query with nothing to look for.
    """
    started = time.perf_counter()
    engine = get_engine()
    parsed = parse_query(text)
    image_vector = None
    if similar_to is not None:
        image_vector = stored_vector(photo=similar_to, model_id=engine.model_id)
        if image_vector is None:
            raise SearchError("This photo has no vector yet; try again once it is ready.")
    elif image is not None:
        image_vector = engine.encode_images([image])[0]
    text_vector = text_embedding(parsed.positive) if parsed.positive else None
    if image_vector is None and text_vector is None:
        if parsed.negatives:
            raise SearchError("Say what the photos should show, not only what to leave out.")
        raise SearchError("Describe a photo or give an image to search with.")
    try:
        vector = combine_vectors(
            image=image_vector,
            text=text_vector,
            negatives=[text_embedding(term) for term in parsed.negatives],
            text_weight=text_weight_with_image(model_name=engine.spec.name),
        )
    except ValueError as exc:
        raise SearchError(f"This query cannot be searched: {exc}.") from None

    nearest = photos_nearest(
        user=user,
        vector=vector,
        model_id=engine.model_id,
        filters=filters,
        exclude_photo_id=similar_to.pk if similar_to is not None else None,
    )
    ranked = nearest.hits.ranked
    threshold = min_score(
        model_name=engine.spec.name,
        kind="text" if image_vector is None else "image",
        strictness=strictness,
    )
    good = [row for row in ranked if threshold is None or row.score >= threshold]
    weak = ranked[len(good) :]
    return SearchOutcome(
        hits=SearchHits(_sorted(good, sort)),
        kind=(
            SearchLog.Kind.SIMILAR
            if similar_to is not None
            else SearchLog.Kind.IMAGE
            if image_vector is not None
            else SearchLog.Kind.TEXT
        ),
        min_score=threshold,
        hidden=len(weak),
        best_hidden_score=weak[0].score if weak else None,
        latency_ms=(time.perf_counter() - started) * 1000,
        exact=nearest.exact,
    )


def _sorted(ranked: list[Ranked], sort: Sort) -> list[Ranked]:
    if sort == Sort.RELEVANCE:
        return ranked  # already best first; ties keep the id order of photos_nearest
    undated = [row for row in ranked if row.taken_at is None]
    dated = sorted(
        (row for row in ranked if row.taken_at is not None),
        key=lambda row: (row.taken_at, row.photo_id),
        reverse=sort == Sort.TAKEN_NEWEST,
    )
    return dated + undated  # photos without a date go last, in relevance order


@lru_cache(maxsize=2048)
def _cached_text_embedding(model_id: str, text: str) -> np.ndarray:
    vector = get_engine().encode_texts([text])[0]
    vector.flags.writeable = False
    return vector


def text_embedding(text: str) -> np.ndarray:
    """The active model's unit vector for ``text``; repeated queries skip the model."""
    return _cached_text_embedding(get_engine().model_id, text)


def stored_vector(*, photo: Photo, model_id: str) -> np.ndarray | None:
    vector = (
        Embedding.objects.filter(photo=photo, model_id=model_id)
        .values_list("vector", flat=True)
        .first()
    )
    return None if vector is None else np.asarray(vector, dtype=np.float32)


@dataclass(frozen=True)
class Nearest:
    hits: SearchHits  # nearest first
    exact: bool  # an exact scan rather than the HNSW index


def photos_nearest(
    *,
    user,
    vector,
    model_id: str,
    filters: SearchFilters = NO_FILTERS,
    exclude_photo_id: int | None = None,
    limit: int | None = None,
    exact: bool | None = None,
) -> Nearest:
    """The visible, filtered, ready photos nearest to ``vector``, up to ``limit``.

    A search that can only match a few photos (a small library, a selective filter) scans them
    exactly: an approximate index that must skip most of what it finds is both slower and
    less complete. Larger candidate sets go through the HNSW index with iterative scans, which
    keep walking the graph until enough rows pass the filters. ``exact`` forces either way.
    """
    limit = limit or settings.MEDIASEARCH_SEARCH_MAX_RESULTS
    if exact is None:
        candidates = Photo.objects.filter(
            _visible(user), _photo_filters(filters, model_id), status=Photo.Status.READY
        )
        # Counting stops at the threshold: a full count of a large library costs more than
        # the index search it decides on.
        below = settings.MEDIASEARCH_EXACT_SCAN_BELOW
        exact = candidates.order_by()[:below].count() < below
    queryset = _nearest_queryset(
        user=user,
        vector=vector,
        model_id=model_id,
        filters=filters,
        exclude_photo_id=exclude_photo_id,
        exact=exact,
    )
    with transaction.atomic(), connection.cursor() as cursor:
        # Iterative scans keep walking the graph until ``limit`` rows pass the filters, so the
        # candidate list need not be as long as the result.
        cursor.execute("SET LOCAL hnsw.ef_search = %s", [settings.MEDIASEARCH_HNSW_EF_SEARCH])
        # Relaxed order: results come back nearly sorted and are re-sorted below.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # Ids, distances and dates only: vectors and whole rows are for the page to load.
        rows = list(queryset.values_list("photo_id", "distance", "photo__taken_at")[:limit])
    rows.sort(key=lambda row: (row[1], row[0]))
    ranked = [
        Ranked(photo_id=photo_id, score=1.0 - float(distance), taken_at=taken_at)
        for photo_id, distance, taken_at in rows
    ]
    return Nearest(hits=SearchHits(ranked), exact=exact)


def _photo_filters(filters: SearchFilters, model_id: str, prefix: str = "") -> Q:
    """``filters`` as conditions on Photo (or, with ``prefix="photo__"``, on a related row)."""
    conditions = Q()
    if filters.taken_after:
        conditions &= Q(**{f"{prefix}taken_at__date__gte": filters.taken_after})
    if filters.taken_before:
        conditions &= Q(**{f"{prefix}taken_at__date__lte": filters.taken_before})
    if filters.camera:
        camera = Q(**{f"{prefix}camera_model__iexact": filters.camera})
        conditions &= camera | Q(**{f"{prefix}camera_make__iexact": filters.camera})
    if filters.has_location is not None:
        conditions &= Q(**{f"{prefix}latitude__isnull": not filters.has_location})
    if filters.owner_id is not None:
        conditions &= Q(**{f"{prefix}owner_id": filters.owner_id})
    if filters.album_id is not None:
        conditions &= Q(**{f"{prefix}albums": filters.album_id})
    if filters.tag:
        tagged = PhotoTag.objects.filter(model_id=model_id, name=filters.tag).values("photo_id")
        conditions &= Q(**{f"{prefix}pk__in": tagged})
    return conditions


def _nearest_queryset(
    *,
    user,
    vector,
    model_id: str,
    filters: SearchFilters = NO_FILTERS,
    exclude_photo_id: int | None = None,
    exact: bool = False,
):
    # The HNSW index is on the column cast to half precision (search.vector_index); ordering by
    # the bare column cannot use it, which makes the scan exact (and full precision).
    field = VectorField if exact else HalfVectorField
    dim = len(vector)
    query = Cast(Value(_vector_literal(vector)), field(dimensions=dim))
    column = "vector" if exact else Cast("vector", field(dimensions=dim))
    queryset = (
        Embedding.objects.filter(model_id=model_id, photo__status=Photo.Status.READY)
        .filter(_visible(user, prefix="photo__"), _photo_filters(filters, model_id, "photo__"))
        .annotate(distance=CosineDistance(column, query))
        .order_by("distance")
    )
    if exclude_photo_id is not None:
        queryset = queryset.exclude(photo_id=exclude_photo_id)
    return queryset


def explain_nearest(
    *, user, vector, model_id: str, filters: SearchFilters = NO_FILTERS, limit: int = 10
) -> str:
    """The query plan of an index-backed nearest-neighbour search (to check the index is used)."""
    queryset = _nearest_queryset(user=user, vector=vector, model_id=model_id, filters=filters)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        return queryset[:limit].explain()


def _vector_literal(vector) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"


def photo_list_for(*, user):
    """The user's own photos, newest first."""
    return Photo.objects.filter(owner=user).order_by("-created_at", "-id")


def photo_tags_for(*, photo: Photo | int, model_id: str) -> list[PhotoTag]:
    """The photo's zero-shot tags under ``model_id`` (usually ``get_engine().model_id``), most
    probable first. Each tag's ``score`` is its probability among the tags of its group.

    Empty while the photo has not been embedded by that model. Does not check who may see the
    photo: the caller has already decided that.
    """
    return list(PhotoTag.objects.filter(photo=photo, model_id=model_id).order_by("-score", "name"))


def photo_tag_names_for(
    *, photo_ids: Iterable[int], model_id: str, per_photo: int = 5
) -> dict[int, list[str]]:
    """The names of the most probable tags under ``model_id`` of each of ``photo_ids``, at
    most ``per_photo`` each, most probable first: one query for a whole page of photos. Photos
    without tags are absent. Does not check who may see the photos."""
    names: dict[int, list[str]] = {}
    rows = (
        PhotoTag.objects.filter(photo_id__in=list(photo_ids), model_id=model_id)
        .order_by("photo_id", "-score", "name")
        .values_list("photo_id", "name")
    )
    for photo_id, name in rows:
        photo_names = names.setdefault(photo_id, [])
        if len(photo_names) < per_photo:
            photo_names.append(name)
    return names


@dataclass(frozen=True)
class PhotoState:
    id: int
    filename: str
    status: str  # a Photo.Status value
    failure_reason: str
    has_thumbnail: bool

    @classmethod
    def of(cls, photo: Photo) -> PhotoState:
        return cls(
            id=photo.pk,
            filename=photo.original_filename,
            status=photo.status,
            failure_reason=photo.failure_reason,
            has_thumbnail=bool(photo.thumbnail),
        )


def photo_states_for(*, user, photo_ids: Iterable[int]) -> list[PhotoState]:
    """Where processing stands for those of ``photo_ids`` that ``user`` owns, in id order; the
    others are left out without a word. One query."""
    rows = (
        Photo.objects.filter(owner=user, pk__in=list(photo_ids))
        .order_by("pk")
        .values_list("pk", "original_filename", "status", "failure_reason", "thumbnail")
    )
    return [
        PhotoState(
            id=pk,
            filename=filename,
            status=status,
            failure_reason=reason,
            has_thumbnail=bool(thumbnail),
        )
        for pk, filename, status, reason, thumbnail in rows
    ]


def tag_counts_for(*, photos_queryset: QuerySet[Photo], model_id: str) -> list[tuple[str, int]]:
    """Every tag name given to the photos of ``photos_queryset`` under ``model_id``, with how
    many of those photos have it, sorted by name: the choices of a tag filter.

    ``photos_queryset`` is whatever the user may see (their photos, shared albums...), as the
    caller decides; one aggregate query.
    """
    return list(
        PhotoTag.objects.filter(model_id=model_id, photo__in=photos_queryset.values("pk"))
        .order_by("name")
        .values("name")
        .annotate(photos=Count("id"))
        .values_list("name", "photos")
    )


def photos_with_tag(
    *, photos_queryset: QuerySet[Photo], model_id: str, name: str
) -> QuerySet[Photo]:
    """The photos of ``photos_queryset`` that have the tag ``name`` under ``model_id`` (each at
    most once: a photo has a tag name once per model)."""
    return photos_queryset.filter(tags__model_id=model_id, tags__name=name)


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
class SearchChoices:
    """What the search filters can offer ``user``: only values found among their photos."""

    cameras: list[str]
    albums: list[Album]
    tags: list[tuple[str, int]]
    owners: list  # staff only: users who uploaded photos


def search_choices_for(*, user, model_id: str) -> SearchChoices:
    cameras, tags, owner_ids = _cached_choices(user=user, model_id=model_id)
    User = get_user_model()
    return SearchChoices(
        cameras=cameras,
        albums=list(albums_visible_to(user)),
        tags=tags,
        owners=list(User.objects.filter(pk__in=owner_ids).order_by("username")),
    )


# Cached choices are stored under the generations they were computed in, so every process sees
# a change at once: the whole library's (bumped when tags or albums change) and the reader's own
# (bumped when photos they see become ready or go away; staff share one, as they see every
# photo). One person's upload leaves everyone else's choices cached. The timeout only bounds how
# stale they get when a bump is lost.
CHOICES_GENERATION_KEY = "search-choices-generation"
CHOICES_TIMEOUT = 600


def search_choices_changed(*, photo_ids: Iterable[int] | None = None) -> None:
    """Photos became ready or went away, tags or albums changed: recompute filter choices once
    the change commits (at once outside a transaction). A bump before the commit would let
    another process cache the old choices under the new generation.

    With ``photo_ids``, only the choices of people who see those photos are recomputed; call it
    before the photos are deleted, as it looks up who sees them.
    """
    if photo_ids is None:
        transaction.on_commit(forget_search_choices)
        return
    keys = [_viewer_generation_key("staff")]
    keys += [_viewer_generation_key(pk) for pk in _viewers_of(list(photo_ids))]
    transaction.on_commit(partial(_bump_generations, keys))


def forget_search_choices() -> None:
    """Make every process recompute everyone's filter choices from now on."""
    _bump_generations([CHOICES_GENERATION_KEY])


def _viewers_of(photo_ids: list[int]) -> set[int]:
    """Ids of the people (besides staff) who see any of these photos: owners, and those their
    albums are shared with."""
    owners = Photo.objects.filter(pk__in=photo_ids).values_list("owner_id", flat=True)
    shared = Album.shared_with.through.objects.filter(album__photos__in=photo_ids)
    return set(owners) | set(shared.values_list("user_id", flat=True))


def _viewer_generation_key(viewer: int | str) -> str:
    """A user's id, or ``"staff"`` for everyone who sees every photo."""
    return f"{CHOICES_GENERATION_KEY}:{viewer}"


def _bump_generations(keys: list[str]) -> None:
    try:
        for key in keys:
            cache.add(key, 0, timeout=None)
            cache.incr(key)
    except Exception:
        logger.warning("search choices may stay stale for %s s", CHOICES_TIMEOUT, exc_info=True)


def _cached_choices(*, user, model_id: str) -> tuple[list[str], list[tuple[str, int]], list]:
    """Camera names, tag counts and (staff) uploader ids of the photos ``user`` may see.

    Two aggregates over the whole library, 200 ms at 100k photos, on every search page: they
    are cached until the library changes. Without the cache (Redis away) they are computed.
    """
    own_key = _viewer_generation_key("staff" if user.is_staff else user.pk)
    try:
        generations = cache.get_many([CHOICES_GENERATION_KEY, own_key])
        key = (
            f"search-choices:{generations.get(CHOICES_GENERATION_KEY, 0)}:"
            f"{generations.get(own_key, 0)}:{model_id}:{user.pk}:{int(user.is_staff)}"
        )
        cached = cache.get(key)
    except Exception:
        logger.warning("search choices computed without the cache", exc_info=True)
        return _choices(user=user, model_id=model_id)
    if cached is None:
        cached = _choices(user=user, model_id=model_id)
        try:
            cache.set(key, cached, timeout=CHOICES_TIMEOUT)
        except Exception:
            logger.warning("search choices not cached", exc_info=True)
    return cached


def _choices(*, user, model_id: str) -> tuple[list[str], list[tuple[str, int]], list]:
    visible = photos_visible_to(user).filter(status=Photo.Status.READY)
    cameras = (
        visible.exclude(camera_model="")
        .order_by("camera_model")
        .values_list("camera_model", flat=True)
        .distinct()
    )
    tags = tag_counts_for(photos_queryset=visible, model_id=model_id)
    owner_ids = []
    if user.is_staff:
        owner_ids = list(Photo.objects.order_by().values_list("owner_id", flat=True).distinct())
    return list(cameras[:200]), list(tags[:300]), owner_ids


def photo_detail_for(*, user, pk: int) -> Photo:
    """One photo ``user`` may see, with its owner; raises ``Photo.DoesNotExist`` otherwise."""
    return photos_visible_to(user).select_related("owner").get(pk=pk)


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


@dataclass(frozen=True)
class SearchActivity:
    """The last day of searches, from the search log."""

    count: int
    no_match: int  # searches that showed no result
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    recent: list[SearchLog]


def search_activity(*, hours: int = 24, recent: int = 20) -> SearchActivity:
    since = timezone.now() - timedelta(hours=hours)
    window = SearchLog.objects.filter(created_at__gte=since)
    with connection.cursor() as cursor:
        # Percentiles in the database: one query however many searches there were.
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE result_count = 0), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM search_searchlog WHERE created_at >= %s",
            [since],
        )
        count, no_match, p50, p95 = cursor.fetchone()
    return SearchActivity(
        count=count,
        no_match=no_match,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        recent=list(window.select_related("user")[:recent]),
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
