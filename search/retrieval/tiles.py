"""Search hits as the grid shows them: one tile a photo, with its links and alt text."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlencode

from django.urls import reverse

from search.models import Photo
from search.retrieval.selectors import SearchHit
from search.tags.selectors import photo_tag_names_for
from workers.active_engine import get_engine


@dataclass(frozen=True)
class ResultTile:
    """A search hit as a grid tile shows it."""

    photo: Photo
    score: float
    alt: str  # the photo's most probable tags, else its file name
    detail_url: str  # for a video, opens at its best moment (and lists the query's moments)
    thumbnail_url: str
    similar_url: str
    moment: str = ""  # a video's best moment, as the tile shows it ("0:42"); "" for a photo
    matched: tuple[str, ...] = ()  # words of the photo's text (OCR) the query matched


def result_tiles(hits: Iterable[SearchHit], *, query: str = "") -> list[ResultTile]:
    """Tiles for ``hits``, their tags fetched in one query under the active model. A video's
    tile links to its page at its best moment, with ``query`` for the page's list of moments."""
    hits = list(hits)
    tags = photo_tag_names_for(
        photo_ids=[hit.photo.pk for hit in hits], model_id=get_engine().model_id
    )
    # Three URLs a tile, sixty tiles a page: resolving each was a fifth of a search's time.
    detail, thumbnail, similar = (
        _photo_url_maker(name)
        for name in ("search:photo_detail", "search:photo_thumbnail", "search:photo_similar")
    )
    tiles = []
    for hit in hits:
        video = hit.photo.kind == Photo.Kind.VIDEO
        url = detail(hit.photo.pk)
        if video:
            url += "?" + urlencode(
                {"t": f"{hit.moment_ms / 1000:g}", **({"q": query} if query else {})}
            )
        elif hit.matched and query:
            url += "?" + urlencode({"q": query})  # the page highlights the matched words
        tiles.append(
            ResultTile(
                photo=hit.photo,
                score=hit.score,
                alt=", ".join(tags.get(hit.photo.pk, ())) or hit.photo.original_filename,
                detail_url=url,
                thumbnail_url=thumbnail(hit.photo.pk),
                similar_url=similar(hit.photo.pk),
                moment=clock(hit.moment_ms) if video else "",
                matched=hit.matched,
            )
        )
    return tiles


def clock(ms: int) -> str:
    """A time in a video as people write it: 0:42, 12:05, 1:02:03."""
    seconds = int(ms // 1000)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _photo_url_maker(name: str) -> Callable[[int], str]:
    """``lambda pk: reverse(name, args=[pk])`` for a URL whose only argument is a photo id,
    resolved once."""
    marker = 918273645  # stands for the id; the rest of the path is fixed text
    prefix, suffix = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{prefix}{int(pk)}{suffix}"
