"""Searches: rank the photos a user may see against text, an image or a photo, through the
per-model HNSW index or an exact scan."""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import F, Q, Value
from django.db.models.functions import Cast
from pgvector.django import CosineDistance, HalfVectorField, VectorField

from search.models import Embedding, Photo, PhotoTag, SearchLog
from search.photos.selectors import visibility
from search.places.query import PlaceMatch
from search.retrieval.fusion import Signal, fuse
from search.retrieval.places import city_with_country, place_filtered, query_place
from search.retrieval.query import (
    NO_FILTERS,
    Media,
    SearchFilters,
    Sort,
    Strictness,
    combine_vectors,
    parse_query,
)
from search.retrieval.relevance import min_score, text_weight_with_image
from search.text.selectors import TextMatch, TextTerms, text_matches, text_terms
from workers.active_engine import get_engine
from workers.embedding.model import ClipEngine

if TYPE_CHECKING:
    from PIL.Image import Image


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SearchHit:
    photo: Photo
    score: float  # cosine similarity, 1.0 = same direction; fused with text matches (fusion.py)
    moment_ms: int = 0  # for a video: where its best-matching moment is
    clip_score: float | None = None  # the CLIP cosine alone, when other signals added to it
    matched: tuple[str, ...] = ()  # words of the photo's text (OCR) that the query matched


@dataclass(frozen=True)
class Ranked:
    """A ranked photo before its row is loaded: what ordering and cut-offs need."""

    photo_id: int
    score: float
    taken_at: datetime | None
    moment_ms: int = 0  # a video's best moment (its keyframe nearest the query)
    clip_score: float | None = None
    matched: tuple[str, ...] = ()


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
            SearchHit(
                photo=photos[row.photo_id],
                score=row.score,
                moment_ms=row.moment_ms,
                clip_score=row.clip_score,
                matched=row.matched,
            )
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
    # The place the query's words named, searched as a filter (the rest went to CLIP).
    place: PlaceMatch | None = None
    # False when the query named only a place: nothing to rank by, so no scores to show.
    scored: bool = True
    text_matches: int = 0  # photos whose text (OCR) matched the query
    text_only: bool = False  # a ``text:`` query: OCR text alone, scored by match strength

    @property
    def top_score(self) -> float | None:
        return max((row.score for row in self.hits.ranked), default=None)


class SearchError(ValueError):
    """A query that cannot be run as asked; ``str(error)`` says why, for the user."""


def photo_search(
    *,
    user,
    text: str = "",
    image: Image | None = None,
    similar_to: Photo | None = None,
    filters: SearchFilters = NO_FILTERS,
    strictness: Strictness = Strictness.NORMAL,
    sort: Sort = Sort.RELEVANCE,
    place_words: bool = True,
) -> SearchOutcome:
    """Rank the photos ``user`` may see against a description, an image, a photo of theirs, or
    a combination (see ``search.query``), keep the good matches, and order them.

    With ``place_words``, a place of the library named in ``text`` ("beach in Lisbon")
    becomes a filter and the rest of the text the description; a query that is only a place
    lists its photos, newest first (``SearchOutcome.scored`` is then False). ``similar_to``
    uses the photo's stored vector: no model call. Raises ``SearchError`` for a query with
    nothing to look for.
    """
    started = time.perf_counter()
    engine = get_engine()
    place = (
        query_place(user=user, text=text, model_id=engine.model_id, filters=filters)
        if place_words
        else None
    )
    if place is not None:
        text, filters = place.remainder, place_filtered(filters, place)
    filters = city_with_country(user=user, model_id=engine.model_id, filters=filters)
    if place is not None and not text and image is None and similar_to is None:
        return _place_listing(
            user=user, filters=filters, sort=sort, place=place, model_id=engine.model_id, t0=started
        )
    parsed = parse_query(text)
    plain_text = image is None and similar_to is None
    terms = text_terms(text=parsed.positive, phrases=parsed.phrases) if plain_text else TextTerms()
    if parsed.text_only:
        if not plain_text:
            raise SearchError("text: searches only the text in photos; leave out the image.")
        if terms.is_empty:
            raise SearchError("Say which words to look for in the photos' text after text:.")
        return _text_only_search(
            user=user,
            terms=terms,
            model_id=engine.model_id,
            filters=filters,
            strictness=strictness,
            sort=sort,
            started=started,
        )
    image_vector = None
    if similar_to is not None:
        image_vector = stored_vector(photo=similar_to, model_id=engine.model_id)
        if image_vector is None:
            raise SearchError("This photo has no vector yet; try again once it is ready.")
    elif image is not None:
        image_vector = engine.encode_images([image])[0]
    # One engine throughout: the active model may change while this search runs.
    text_vector = text_embedding(parsed.positive, engine=engine) if parsed.positive else None
    if image_vector is None and text_vector is None:
        if parsed.negatives:
            raise SearchError("Say what the photos should show, not only what to leave out.")
        raise SearchError("Describe a photo or give an image to search with.")
    try:
        vector = combine_vectors(
            image=image_vector,
            text=text_vector,
            negatives=[text_embedding(term, engine=engine) for term in parsed.negatives],
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
    matches: dict[int, TextMatch] = {}
    if not terms.is_empty and settings.MEDIASEARCH_TEXT_MATCH_WEIGHT > 0:
        matches = text_matches(
            terms=terms, photos=_candidates(user=user, model_id=engine.model_id, filters=filters)
        )
    if matches:
        ranked = _fused(
            ranked,
            matches,
            vector=vector,
            model_id=engine.model_id,
            unit=min_score(model_name=engine.spec.name, kind="text", strictness=Strictness.NORMAL)
            or 0.0,
        )
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
        place=place,
        text_matches=len(matches),
    )


def _place_listing(
    *, user, filters: SearchFilters, sort: Sort, place: PlaceMatch, model_id: str, t0: float
) -> SearchOutcome:
    """Every photo of a place (and the other filters), for a query that only named the place:
    newest taken first unless asked otherwise, undated last."""
    taken = F("taken_at")
    order = taken.asc(nulls_last=True) if sort == Sort.TAKEN_OLDEST else taken.desc(nulls_last=True)
    rows = (
        Photo.objects.filter(
            visibility(user), _photo_filters(filters, model_id), status=Photo.Status.READY
        )
        .order_by(order, "-id")
        .values_list("pk", "taken_at")[: settings.MEDIASEARCH_SEARCH_MAX_RESULTS]
    )
    ranked = [Ranked(photo_id=pk, score=1.0, taken_at=taken_at) for pk, taken_at in rows]
    return SearchOutcome(
        hits=SearchHits(ranked),
        kind=SearchLog.Kind.TEXT,
        min_score=None,
        hidden=0,
        best_hidden_score=None,
        latency_ms=(time.perf_counter() - t0) * 1000,
        exact=True,
        place=place,
        scored=False,
    )


def _candidates(*, user, model_id: str, filters: SearchFilters):
    return Photo.objects.filter(
        visibility(user), _photo_filters(filters, model_id), status=Photo.Status.READY
    )


def _fused(
    ranked: list[Ranked],
    matches: dict[int, TextMatch],
    *,
    vector,
    model_id: str,
    unit: float,
) -> list[Ranked]:
    """CLIP's ranking fused with the photos' text matches (``fusion.fuse``)."""
    by_id = {row.photo_id: row for row in ranked}
    missing = [photo_id for photo_id in matches if photo_id not in by_id]
    for row in clip_scores(photo_ids=missing, vector=vector, model_id=model_id):
        by_id[row.photo_id] = row
    signal = Signal(
        name="text",
        strengths={photo_id: match.strength for photo_id, match in matches.items()},
        weight=settings.MEDIASEARCH_TEXT_MATCH_WEIGHT,
    )
    fused = fuse(
        clip={photo_id: row.score for photo_id, row in by_id.items()}, signals=[signal], unit=unit
    )
    limit = settings.MEDIASEARCH_SEARCH_MAX_RESULTS
    return [
        Ranked(
            photo_id=row.photo_id,
            score=row.score,
            taken_at=by_id[row.photo_id].taken_at,
            moment_ms=by_id[row.photo_id].moment_ms,
            clip_score=row.clip_score if row.contributions else None,
            matched=matches[row.photo_id].matched if row.photo_id in matches else (),
        )
        for row in fused[:limit]
    ]


def clip_scores(*, photo_ids: Sequence[int], vector, model_id: str) -> list[Ranked]:
    """The CLIP scores of named photos against ``vector`` (a video's: its best moment), for
    photos another signal found that CLIP's nearest did not include. One exact query."""
    if not photo_ids:
        return []
    query = Cast(Value(_vector_literal(vector)), VectorField(dimensions=len(vector)))
    rows = (
        Embedding.objects.filter(photo_id__in=photo_ids, model_id=model_id)
        .annotate(distance=CosineDistance("vector", query))
        .order_by("photo_id", "distance", "frame_ms")
        .values_list("photo_id", "distance", "photo__taken_at", "frame_ms")
    )
    best: dict[int, Ranked] = {}
    for photo_id, distance, taken_at, frame_ms in rows:
        if photo_id not in best:
            best[photo_id] = Ranked(
                photo_id=photo_id,
                score=1.0 - float(distance),
                taken_at=taken_at,
                moment_ms=frame_ms,
            )
    return list(best.values())


# A ``text:`` query's cut-offs: the share of its terms a photo's text must hold.
TEXT_ONLY_MIN_STRENGTH = {
    Strictness.LOOSE: 0.3,
    Strictness.NORMAL: 0.5,
    Strictness.STRICT: 1.0,
}


def _text_only_search(
    *,
    user,
    terms: TextTerms,
    model_id: str,
    filters: SearchFilters,
    strictness: Strictness,
    sort: Sort,
    started: float,
) -> SearchOutcome:
    """A ``text:`` query: photos ranked by how fully their text matches, CLIP left out."""
    matches = text_matches(
        terms=terms,
        photos=_candidates(user=user, model_id=model_id, filters=filters),
        limit=settings.MEDIASEARCH_SEARCH_MAX_RESULTS,
    )
    dates = dict(Photo.objects.filter(pk__in=list(matches)).values_list("pk", "taken_at"))
    ranked = sorted(
        (
            Ranked(
                photo_id=match.photo_id,
                score=match.strength,
                taken_at=dates.get(match.photo_id),
                matched=match.matched,
            )
            for match in matches.values()
            if match.photo_id in dates
        ),
        key=lambda row: (-row.score, row.photo_id),
    )
    threshold = TEXT_ONLY_MIN_STRENGTH.get(strictness)
    good = [row for row in ranked if threshold is None or row.score >= threshold]
    weak = ranked[len(good) :]
    return SearchOutcome(
        hits=SearchHits(_sorted(good, sort)),
        kind=SearchLog.Kind.TEXT,
        min_score=threshold,
        hidden=len(weak),
        best_hidden_score=weak[0].score if weak else None,
        latency_ms=(time.perf_counter() - started) * 1000,
        exact=True,
        text_matches=len(matches),
        text_only=True,
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


_TEXT_VECTORS_KEPT = 2048
# Text vectors by (model id, text), least recently used first. Each is computed by the engine of
# its model id: the active model can change between two ``get_engine()`` calls (a switch), and a
# vector cached under the wrong id would be served for the life of the process.
_text_vectors: OrderedDict[tuple[str, str], np.ndarray] = OrderedDict()
_text_vectors_lock = threading.Lock()


def text_embedding(text: str, *, engine: ClipEngine) -> np.ndarray:
    """``engine``'s unit vector for ``text``; repeated queries skip the model."""
    key = (engine.model_id, text)
    with _text_vectors_lock:
        vector = _text_vectors.get(key)
        if vector is not None:
            _text_vectors.move_to_end(key)
            return vector
    vector = engine.encode_texts([text])[0]
    vector.flags.writeable = False
    with _text_vectors_lock:
        _text_vectors[key] = vector
        while len(_text_vectors) > _TEXT_VECTORS_KEPT:
            _text_vectors.popitem(last=False)
    return vector


def stored_vector(*, photo: Photo, model_id: str) -> np.ndarray | None:
    """A photo's vector; for a video, the mean of its moments' (what "find similar" looks for)."""
    vectors = list(
        Embedding.objects.filter(photo=photo, model_id=model_id).values_list("vector", flat=True)
    )
    if not vectors:
        return None
    mean = np.mean([np.asarray(vector, dtype=np.float32) for vector in vectors], axis=0)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


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
            visibility(user), _photo_filters(filters, model_id), status=Photo.Status.READY
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
        # Relaxed order: index results come back nearly sorted (pgvector's docs); which rows
        # they are is still the SQL's ORDER BY and LIMIT. The sort below makes it strict.
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        # Ids, distances and dates only: vectors and whole rows are for the page to load. A
        # video has a row per keyframe: ask for more rows when videos may be among them.
        fetch = limit * (settings.MEDIASEARCH_SEARCH_FRAME_OVERFETCH if _has_videos() else 1)
        rows = list(
            queryset.values_list("photo_id", "distance", "photo__taken_at", "frame_ms")[:fetch]
        )
    rows.sort(key=lambda row: (row[1], row[0], row[3]))
    ranked, seen = [], set()
    for photo_id, distance, taken_at, frame_ms in rows:
        if photo_id in seen:
            continue  # a video once, at its best moment
        seen.add(photo_id)
        ranked.append(
            Ranked(
                photo_id=photo_id,
                score=1.0 - float(distance),
                taken_at=taken_at,
                moment_ms=frame_ms,
            )
        )
    return Nearest(hits=SearchHits(ranked[:limit]), exact=exact)


def _has_videos() -> bool:
    return Photo.objects.filter(kind=Photo.Kind.VIDEO, status=Photo.Status.READY).exists()


@dataclass(frozen=True)
class Moment:
    time_ms: int
    score: float


def query_moments(*, video: Photo, text: str, limit: int = 8) -> list[Moment]:
    """The moments of ``video`` that best match a text query (its parsed description)."""
    engine = get_engine()
    parsed = parse_query(text)
    if not parsed.positive:
        return []
    vector = text_embedding(parsed.positive, engine=engine)
    return video_moments(video=video, vector=vector, model_id=engine.model_id, limit=limit)


def video_moments(*, video: Photo, vector, model_id: str, limit: int = 8) -> list[Moment]:
    """The keyframes of ``video`` nearest to ``vector``, best first (an exact scan: a video has
    at most ``MEDIASEARCH_VIDEO_MAX_FRAMES``)."""
    query = Cast(Value(_vector_literal(vector)), VectorField(dimensions=len(vector)))
    rows = (
        Embedding.objects.filter(photo=video, model_id=model_id)
        .annotate(distance=CosineDistance("vector", query))
        .order_by("distance", "frame_ms")
        .values_list("frame_ms", "distance")[:limit]
    )
    return [Moment(time_ms=at, score=1.0 - float(distance)) for at, distance in rows]


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
    if filters.media == Media.VIDEOS:
        conditions &= Q(**{f"{prefix}kind": Photo.Kind.VIDEO})
    elif filters.media == Media.PHOTOS:
        conditions &= ~Q(**{f"{prefix}kind": Photo.Kind.VIDEO})
    if filters.country:
        conditions &= Q(**{f"{prefix}country_code": filters.country})
    if filters.city:
        conditions &= Q(**{f"{prefix}city": filters.city})
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
        .filter(visibility(user, prefix="photo__"), _photo_filters(filters, model_id, "photo__"))
        .annotate(distance=CosineDistance(column, query))
        .order_by("distance")
    )
    if exclude_photo_id is not None:
        queryset = queryset.exclude(photo_id=exclude_photo_id)
    return queryset


def _vector_literal(vector) -> str:
    return "[" + ",".join(repr(float(x)) for x in np.asarray(vector, dtype=np.float32)) + "]"
