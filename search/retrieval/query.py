"""What a search asks for, as plain values: the parsed query text, the filters, the strictness
and the order. No database and no model here, so every rule is easy to test on its own.

Query syntax (shown in the search box help):

- ``beach at dusk``: photos that look like the description.
- ``beach -people``, ``beach -"red umbrella"``: a leading minus pushes a word or a quoted
  phrase away from the results.
- ``"booking code"``: a quoted phrase must appear exactly so in the text of a photo (OCR) to
  count as a text match; its words still describe the photo to CLIP.
- ``text: tesco``: only the text read in photos (OCR), no CLIP.
- A query image (uploaded, or "find similar" on a photo) together with text: photos like the
  image, moved towards the text ("like this photo, but at night").
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from datetime import date
from enum import StrEnum

import numpy as np

# A term is a quoted phrase or a run of non-space characters, either one with a leading minus.
_TERM = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')

# How far a negative term pushes, relative to what it pushes against.
NEGATIVE_WEIGHT = 0.5


# ``text:`` at the start of a query: search only the text read in photos.
TEXT_ONLY_PREFIX = "text:"


@dataclass(frozen=True)
class ParsedQuery:
    positive: str  # what the photos should show; empty for a purely negative query
    negatives: tuple[str, ...] = ()
    phrases: tuple[str, ...] = ()  # the quoted positive phrases (also in ``positive``)
    text_only: bool = False  # the query began with ``text:``

    @property
    def is_empty(self) -> bool:
        return not self.positive and not self.negatives


def parse_query(text: str) -> ParsedQuery:
    """Split ``text`` into the description and the ``-excluded`` words or phrases, noting
    the quoted phrases and a leading ``text:``."""
    text = (text or "").strip()
    text_only = text[: len(TEXT_ONLY_PREFIX)].lower() == TEXT_ONLY_PREFIX
    if text_only:
        text = text[len(TEXT_ONLY_PREFIX) :]
    positive: list[str] = []
    negatives: list[str] = []
    phrases: list[str] = []
    for match in _TERM.finditer(text):
        minus_quoted, quoted, minus_word, word = match.groups()
        if quoted is not None:
            target, term = (negatives if minus_quoted else positive), quoted.strip()
            if term and not minus_quoted:
                phrases.append(term)
        else:
            target, term = (negatives if minus_word else positive), word
        if term and term != "-":
            target.append(term)
    return ParsedQuery(
        positive=" ".join(positive),
        negatives=tuple(negatives),
        phrases=tuple(phrases),
        text_only=text_only,
    )


def normalised(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        raise ValueError("the query cancels itself out")
    return (vector / norm).astype(np.float32)


def combine_vectors(
    *,
    image: np.ndarray | None = None,
    text: np.ndarray | None = None,
    negatives: list[np.ndarray] | tuple[np.ndarray, ...] = (),
    text_weight: float = 1.0,
) -> np.ndarray:
    """One unit query vector from unit embeddings: image + text - negatives, renormalised.

    ``text_weight`` scales the text when an image is given too: text matches images with much
    lower cosine scores than images match images (CLIP's modality gap), so unweighted, the
    image would drown the text. Raises ``ValueError`` when there is nothing to search for.
    """
    parts = [vector for vector in (image, text) if vector is not None]
    if not parts:
        raise ValueError("a query needs a description or an image")
    query = np.zeros_like(parts[0], dtype=np.float32)
    if image is not None:
        query += image
    if text is not None:
        query += text * (text_weight if image is not None else 1.0)
    # Each sum term is unit length; scale the push to the size of what it pushes against.
    scale = NEGATIVE_WEIGHT * float(np.linalg.norm(query))
    for negative in negatives:
        query -= scale * negative
    return normalised(query)


class Strictness(StrEnum):
    """How good a match must be to be shown; ``ALL`` shows every photo, ranked."""

    ALL = "all"
    LOOSE = "loose"
    NORMAL = "normal"
    STRICT = "strict"


class Media(StrEnum):
    """Which kinds of item a search returns (``BOTH``: photos and videos in one ranking)."""

    BOTH = ""
    PHOTOS = "photos"
    VIDEOS = "videos"


class Sort(StrEnum):
    RELEVANCE = "relevance"
    TAKEN_NEWEST = "taken_newest"
    TAKEN_OLDEST = "taken_oldest"


@dataclass(frozen=True)
class SearchFilters:
    """Conditions a photo must meet, combinable with any query. ``None``/empty: no condition."""

    taken_after: date | None = None
    taken_before: date | None = None
    camera: str = ""
    has_location: bool | None = None
    owner_id: int | None = None  # staff only: photos uploaded by this user
    album_id: int | None = None
    tag: str = ""
    media: Media = Media.BOTH
    country: str = ""  # an ISO 3166-1 alpha-2 code, upper case
    city: str = ""  # a city name as the geocoder gives it (search.places)

    @property
    def is_empty(self) -> bool:
        return self == SearchFilters()

    def as_log(self) -> dict:
        """The conditions that are set, JSON-ready, for the search log."""
        return {
            key: (value.isoformat() if isinstance(value, date) else value)
            for key, value in asdict(self).items()
            if value not in (None, "")
        }


NO_FILTERS = SearchFilters()
