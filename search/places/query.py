"""Place names in a query's words: "beach in Lisbon", "Lisbon", "photos from Portugal".

Plain values, no database: the caller passes the places its user's library holds
(``KnownPlace``, from ``search.places.selectors``), so only places someone has photos of can
match, and the rest of the query goes on to CLIP.

Words and names are compared case- and accent-folded ("sao paulo" is São Paulo), whole words
only, multi-word names included, the longest name first. An ordinary word that is also the
name of a place of the library ("nice dog", with photos from Nice) must not become a filter:
a single-word name among other words counts only when it is introduced as a place ("in
Nice", "from Nice", "near Nice"; but "in nice weather" is weather), or written with a
capital letter after the first word ("dog Nice"). A query that is only the name ("Nice"),
and a name of several words ("New York"), count anywhere. Quoted words and ``-excluded``
words are never place names.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

# The query syntax's terms, as search.retrieval.query splits them (a quoted phrase or a run of
# non-space characters, either with a leading minus); kept here, below retrieval, to tell
# which words are quoted or excluded.
TERM = re.compile(r'(-?)"([^"]*)"|(-?)(\S+)')
# Words that introduce a place ("beach in Lisbon"); removed with it.
PREPOSITIONS = frozenset({"in", "at", "from", "near", "around"})
# Words that say only "show me pictures" ("photos from Portugal"): when nothing but these is
# left besides the place, the query asks for the place alone.
FILLER = frozenset(
    {"photo", "photos", "picture", "pictures", "pic", "pics", "image", "images", "shots", "taken"}
)
MAX_NAME_WORDS = 5


@dataclass(frozen=True)
class KnownPlace:
    """A city (or, with ``city`` empty, a country) of a user's library, with its photo count."""

    country_code: str
    country: str
    city: str = ""
    count: int = 0

    @property
    def label(self) -> str:
        return f"{self.city}, {self.country}" if self.city else self.country


@dataclass(frozen=True)
class PlaceMatch:
    """The place a query names, and the query without it."""

    place: KnownPlace
    words: str  # the words as typed that named it ("in Lisbon")
    remainder: str  # the rest of the query, for CLIP; "" when the query was only the place
    start: int  # where ``words`` are in the query (characters), for highlighting
    end: int


def fold(text: str) -> str:
    """Case- and accent-folded: "São Paulo" → "sao paulo"."""
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(_WORD.findall(stripped.casefold()))


_WORD = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")
_PUNCTUATION = re.compile(r"[,;.:!?]+")


@dataclass(frozen=True)
class _Word:
    folded: str
    typed: str
    start: int
    end: int
    eligible: bool  # not quoted, not excluded


def place_in_query(text: str, known: list[KnownPlace]) -> PlaceMatch | None:
    """The place of ``known`` that ``text`` names, if any (see the module's rules)."""
    if not text or not known:
        return None
    names: dict[tuple[str, ...], KnownPlace] = {}
    # A city that shares its name with its country ("Singapore", "Luxembourg") means the
    # country: the wider filter. Bigger places first, so a name in two countries means the
    # one with more photos.
    for place in sorted(known, key=lambda p: (bool(p.city), -p.count, p.label)):
        key = tuple(fold(place.city or place.country).split())
        if key and len(key) <= MAX_NAME_WORDS:
            names.setdefault(key, place)
    words = _words(text)
    eligible = [w for w in words if w.eligible]
    only_place = len(eligible) == len(words)
    for size in range(min(MAX_NAME_WORDS, len(words)), 0, -1):
        for first in range(len(words) - size + 1):
            span = words[first : first + size]
            if not all(w.eligible for w in span):
                continue
            named = names.get(tuple(w.folded for w in span))
            if named is None:
                continue
            before = words[first - 1] if first > 0 else None
            introduced = before is not None and before.eligible and before.folded in PREPOSITIONS
            others = [w for w in words if w not in span and not (introduced and w is before)]
            whole = only_place and all(w.folded in FILLER for w in others)
            capitalised = span[0].typed[:1].isupper()
            after = words[first + size] if first + size < len(words) else None
            # "in nice weather": an adjective after a preposition, not the town.
            followed = (
                after is not None
                and after.folded not in PREPOSITIONS
                and after.folded not in FILLER
            )
            if not (
                whole
                or size > 1
                or (introduced and (capitalised or not followed))
                or (first > 0 and capitalised)
            ):
                continue
            start = before.start if introduced and before is not None else span[0].start
            end = span[-1].end
            remainder = " ".join(
                token
                for token in (text[:start] + " " + text[end:]).split()
                if not _PUNCTUATION.fullmatch(token)
            )
            if whole:
                remainder = ""
            return PlaceMatch(
                place=named, words=text[start:end], remainder=remainder, start=start, end=end
            )
    return None


def _words(text: str) -> list[_Word]:
    """The query's words with where they are; quoted and excluded ones are not eligible."""
    words: list[_Word] = []
    for term in TERM.finditer(text):
        _, quoted, minus_word, _ = term.groups()
        eligible = quoted is None and not minus_word
        group = 2 if quoted is not None else 4
        offset = term.start(group)
        for match in _WORD.finditer(term.group(group)):
            typed = match.group()
            words.append(
                _Word(
                    folded=fold(typed),
                    typed=typed,
                    start=offset + match.start(),
                    end=offset + match.end(),
                    eligible=eligible,
                )
            )
    return words
