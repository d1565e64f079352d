"""Reads of the text in photos: which photos' text matches a query (and how well), a photo's
words and boxes for its page, whether OCR is on, and its figures for the dashboard.

Matching runs on PostgreSQL's core full-text search: the folded text (no case, no accents,
folded in Python, so ``unaccent`` is not needed) in the ``simple`` configuration (no stemming:
OCR text mixes languages, names and codes), with prefix matching for words of three letters or
more, and exact phrases for quoted ones. Where the ``pg_trgm`` extension is installed (the
production image), substrings ("esco" in "tesco") and near misses of the recogniser
("estagao" for "estação") match too, through its trigram index.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.postgres.search import SearchQuery
from django.db import connection
from django.db.models import Avg, Count, Q, QuerySet
from django.utils import timezone

from search.models import Photo, PhotoText, Pipeline
from workers.embedding.ocr import words_of

# Words too common to say anything on their own in a description ("a receipt from tesco").
STOP_WORDS = frozenset(
    "a an and at by for from in into is it of on or the to with".split()  # noqa: SIM905
)
PREFIX_MIN_LENGTH = 3
# What each kind of match of one query term is worth (the share of a term it counts as).
EXACT, PREFIX, SUBSTRING, FUZZY = 1.0, 0.8, 0.7, 0.6
FUZZY_MIN_RATIO = 0.75
# Text matches fused into one ranking at most (the strongest): a word in thousands of photos'
# text would otherwise cost a CLIP score for each.
MAX_TEXT_MATCHES = 200
# Rows read from the text index for one query at most (then kept to the visible ones).
MAX_INDEX_ROWS = 5000


@dataclass(frozen=True)
class TextTerms:
    """A query as OCR text is matched: folded words and exact phrases."""

    words: tuple[str, ...] = ()
    phrases: tuple[tuple[str, ...], ...] = ()

    @property
    def count(self) -> int:
        return len(self.words) + len(self.phrases)

    @property
    def is_empty(self) -> bool:
        return self.count == 0


def text_terms(*, text: str, phrases: Sequence[str] = ()) -> TextTerms:
    """The terms of a query's positive description ``text`` (its quoted ``phrases`` given
    apart, as ``search.retrieval.query.ParsedQuery`` keeps them)."""
    phrase_words = [tuple(words_of(phrase)) for phrase in phrases]
    in_phrases = {word for phrase in phrase_words for word in phrase}
    words = [
        word
        for word in dict.fromkeys(words_of(text))
        if word not in STOP_WORDS and word not in in_phrases
    ]
    single = [phrase[0] for phrase in phrase_words if len(phrase) == 1]
    return TextTerms(
        words=tuple(dict.fromkeys([*words, *single])),
        phrases=tuple(dict.fromkeys(phrase for phrase in phrase_words if len(phrase) > 1)),
    )


@dataclass(frozen=True)
class TextMatch:
    photo_id: int
    strength: float  # 0..1: the share of the query's terms found in the photo's text
    matched: tuple[str, ...]  # the folded words of the text that matched


def text_matches(
    *, terms: TextTerms, photos: QuerySet[Photo], limit: int = MAX_TEXT_MATCHES
) -> dict[int, TextMatch]:
    """The photos among ``photos`` whose text matches any of ``terms``, with how well: up to
    ``limit``, the strongest first. Two queries (three with ``pg_trgm``)."""
    if terms.is_empty:
        return {}
    trigram = trigram_available()
    tsquery = _tsquery(terms)
    # Only finished readings have a text vector, so the GIN index alone decides (a status
    # condition made the planner scan every row). The index first, then who may see the few
    # rows it found: joined the other way round, the planner walked every visible photo.
    done = PhotoText.objects.all()
    found = list(
        done.filter(search=SearchQuery(tsquery, search_type="raw", config="simple"))
        .order_by("photo_id")
        .values_list("photo_id", "folded")[:MAX_INDEX_ROWS]
    )
    if trigram and len(found) < MAX_INDEX_ROWS:
        seen = [photo_id for photo_id, _ in found]
        found += _trigram_rows(terms, done.exclude(photo_id__in=seen), MAX_INDEX_ROWS - len(found))
    visible = set(
        photos.filter(pk__in=[photo_id for photo_id, _ in found]).values_list("pk", flat=True)
    )
    found = [(photo_id, folded) for photo_id, folded in found if photo_id in visible]
    scored = [_scored(photo_id, folded.split(), terms, fuzzy=trigram) for photo_id, folded in found]
    best = sorted(
        (match for match in scored if match.strength > 0),
        key=lambda match: (-match.strength, match.photo_id),
    )
    return {match.photo_id: match for match in best[:limit]}


def _tsquery(terms: TextTerms) -> str:
    # Terms are runs of letters and digits (``words_of``), so none carries tsquery syntax.
    parts = [f"{word}:*" if len(word) >= PREFIX_MIN_LENGTH else word for word in terms.words]
    parts += ["(" + " <-> ".join(phrase) + ")" for phrase in terms.phrases]
    return " | ".join(parts)


def _trigram_rows(terms: TextTerms, rows: QuerySet[PhotoText], limit: int) -> list[tuple[int, str]]:
    long_words = [word for word in terms.words if len(word) >= 4]
    if not long_words:
        return []
    where = " OR ".join(["%s <%% folded"] * len(long_words))
    return list(
        rows.extra(where=[where], params=long_words)  # word_similarity via the trigram index
        .order_by("photo_id")
        .values_list("photo_id", "folded")[:limit]
    )


def _scored(photo_id: int, words: list[str], terms: TextTerms, *, fuzzy: bool) -> TextMatch:
    present = set(words)
    total, matched = 0.0, []
    for term in terms.words:
        worth, hits = _word_match(term, words, present, fuzzy=fuzzy)
        total += worth
        matched += hits
    joined = f" {' '.join(words)} "
    for phrase in terms.phrases:
        if f" {' '.join(phrase)} " in joined:
            total += EXACT
            matched += phrase
    return TextMatch(
        photo_id=photo_id,
        strength=round(total / terms.count, 4),
        matched=tuple(dict.fromkeys(matched)),
    )


def _word_match(
    term: str, words: list[str], present: set[str], *, fuzzy: bool
) -> tuple[float, list[str]]:
    if term in present:
        return EXACT, [term]
    if len(term) >= PREFIX_MIN_LENGTH:
        hits = [word for word in words if word.startswith(term)]
        if hits:
            return PREFIX, hits
    if fuzzy and len(term) >= 4:
        hits = [word for word in words if term in word]
        if hits:
            return SUBSTRING, hits
        hits = [
            word
            for word in words
            if difflib.SequenceMatcher(None, term, word).ratio() >= FUZZY_MIN_RATIO
        ]
        if hits:
            return FUZZY, hits
    return 0.0, []


@functools.cache
def trigram_available() -> bool:
    """Whether this database has ``pg_trgm`` (and so substring and fuzzy matching)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm'")
        return cursor.fetchone() is not None


def ocr_is_enabled() -> bool:
    """OCR runs when the setting allows it and the dashboard has not turned it off."""
    return (
        settings.MEDIASEARCH_OCR_ENABLED
        and not Pipeline.objects.filter(pk=1, ocr_enabled=False).exists()
    )


@dataclass(frozen=True)
class WordBox:
    text: str
    confidence: float
    left: float  # percentages of the picture, for CSS
    top: float
    width: float
    height: float
    matched: bool


@dataclass(frozen=True)
class PhotoTextView:
    status: str
    engine: str
    text: str  # the words as read
    boxes: tuple[WordBox, ...]
    failure_reason: str

    @property
    def matched_words(self) -> list[str]:
        return [box.text for box in self.boxes if box.matched]


def photo_text_view(*, photo: Photo, query: str = "") -> PhotoTextView | None:
    """The text read in ``photo`` with each word's box, those matching ``query`` marked;
    ``None`` when OCR has not looked at it."""
    row = PhotoText.objects.filter(photo=photo).first()
    if row is None:
        return None
    terms = text_terms(text=query)
    wanted = set(terms.words) | {word for phrase in terms.phrases for word in phrase}
    boxes = []
    for word in row.words:
        left, top, right, bottom = word["box"]
        folded = words_of(word["text"])
        matched = any(
            part == term or (len(term) >= PREFIX_MIN_LENGTH and part.startswith(term))
            for part in folded
            for term in wanted
        )
        boxes.append(
            WordBox(
                text=word["text"],
                confidence=word["conf"],
                left=round(left * 100, 2),
                top=round(top * 100, 2),
                width=round((right - left) * 100, 2),
                height=round((bottom - top) * 100, 2),
                matched=matched,
            )
        )
    return PhotoTextView(
        status=row.status,
        engine=row.engine,
        text=" ".join(word["text"] for word in row.words),
        boxes=tuple(boxes),
        failure_reason=row.failure_reason,
    )


@dataclass(frozen=True)
class OcrStats:
    enabled: bool
    setting_enabled: bool
    engine: str
    done: int
    failed: int
    pending: int
    with_text: int
    read_last_hour: int
    mean_ms: float | None  # over the last hour's readings


def ocr_stats() -> OcrStats:
    """OCR's figures for the dashboard, in one aggregate query."""
    hour_ago = timezone.now() - timedelta(hours=1)
    figures = PhotoText.objects.aggregate(
        done=Count("pk", filter=Q(status=PhotoText.Status.DONE)),
        failed=Count("pk", filter=Q(status=PhotoText.Status.FAILED)),
        pending=Count("pk", filter=Q(status=PhotoText.Status.PENDING)),
        with_text=Count("pk", filter=Q(status=PhotoText.Status.DONE) & ~Q(folded="")),
        last_hour=Count("pk", filter=Q(status=PhotoText.Status.DONE, read_at__gte=hour_ago)),
        mean_ms=Avg("ms", filter=Q(status=PhotoText.Status.DONE, read_at__gte=hour_ago)),
    )
    return OcrStats(
        enabled=ocr_is_enabled(),
        setting_enabled=settings.MEDIASEARCH_OCR_ENABLED,
        engine=settings.MEDIASEARCH_OCR_ENGINE,
        done=figures["done"],
        failed=figures["failed"],
        pending=figures["pending"],
        with_text=figures["with_text"],
        read_last_hour=figures["last_hour"],
        mean_ms=round(figures["mean_ms"], 1) if figures["mean_ms"] is not None else None,
    )
