"""API: search by text, by image, and for photos similar to one."""

from __future__ import annotations

from datetime import date
from typing import BinaryIO, Literal, cast

from django.conf import settings
from django.contrib.auth import get_user_model
from django.http import Http404
from ninja import File, Form, Query, Router, Schema, UploadedFile
from ninja.errors import HttpError, ValidationError
from pydantic import Field

from search.albums.selectors import albums_visible_to
from search.api.schemas import (
    HIDDEN,
    LIMITED,
    MAX_PAGE,
    ApiRequest,
    ErrorOut,
    PhotoOut,
    Text,
    photo_out,
    sent_or_not,
    visible_photo,
)
from search.models import Photo
from search.photos.services import display_filename
from search.retrieval.forms import QUERY_HELP
from search.retrieval.query import Media, SearchFilters, Sort, Strictness
from search.retrieval.selectors import SearchOutcome, photo_search
from search.retrieval.services import search_log_record
from workers.embedding.images import ImageDecodeError, decode_image

# Search -------------------------------------------------------------------------------------


router = Router()


class SearchParams(Schema):
    q: Text = Field(
        "",
        max_length=500,
        description=QUERY_HELP,
        json_schema_extra={"example": "two red circles on a blue sky"},
    )
    strictness: Strictness | None = Field(
        None,
        description="how good a match must be; `all` ranks every photo. Default: `normal`, "
        "`loose` for similar photos (as on the web pages)",
        json_schema_extra=sent_or_not,
    )
    sort: Sort = Sort.RELEVANCE
    taken_after: date | None = Field(
        None, description="taken on or after this day", json_schema_extra=sent_or_not
    )
    taken_before: date | None = Field(
        None, description="taken on or before this day", json_schema_extra=sent_or_not
    )
    camera: Text = Field("", max_length=100, description="camera make or model, exactly")
    has_location: bool | None = Field(None, json_schema_extra=sent_or_not)
    album: int | None = Field(
        None, description="only photos in this album (its id)", json_schema_extra=sent_or_not
    )
    tag: Text = Field("", max_length=100, description="only photos with this zero-shot tag")
    country: str = Field(
        "",
        pattern="^([A-Za-z]{2})?$",
        description="only photos taken in this country: its ISO 3166-1 alpha-2 code (`PT`)",
    )
    city: Text = Field(
        "", max_length=200, description="only photos taken in this city, by name (`Lisbon`)"
    )
    place_words: bool = Field(
        True,
        description="a place of your library named in `q` (`beach in Lisbon`) becomes a "
        "country or city filter, and the rest of `q` the description; `false` searches the "
        "words as typed",
    )
    show: Media = Field(Media.BOTH, description="`photos`, `videos`, or both (empty, the default)")
    owner: int | None = Field(
        None,
        description="staff only: photos uploaded by this user id",
        json_schema_extra=sent_or_not,
    )
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=200)


class HitOut(Schema):
    score: float | None = Field(
        description=(
            "cosine similarity to the query (1 is the same direction), plus the text match for "
            "a photo whose text (OCR) matches; for a `text:` query, the share of its words "
            "found; null when nothing was ranked (see `scored`)"
        )
    )
    clip_score: float | None = Field(
        description="the cosine similarity alone, when a text match added to it"
    )
    matched_text: list[str] = Field(
        description="words read in the photo (OCR, folded: no case or accents) that matched"
    )
    moment_ms: int | None = Field(
        description="for a video: the time of its best-matching moment, in milliseconds"
    )
    photo: PhotoOut


class QueryPlaceOut(Schema):
    country_code: str
    country: str
    city: str = Field(description="empty when the words named a country")
    label: str = Field(json_schema_extra={"example": "Lisbon, Portugal"})
    words: str = Field(description="the words of `q` that named it", examples=["in Lisbon"])
    remainder: str = Field(description="the rest of `q`, searched as a description")


class SearchOut(Schema):
    kind: Literal["text", "image", "similar"]
    query: str
    place: QueryPlaceOut | None = Field(
        description="the place `q` named, applied as a filter (see `place_words`); null if none"
    )
    scored: bool = Field(
        description="false when `q` named only a place: its photos are listed newest first, "
        "and `score` is null"
    )
    count: int = Field(description="good matches in all (the hits are one page of them)")
    hidden: int = Field(description="ranked photos left out as weak matches")
    min_score: float | None = Field(description="the cut-off applied; null for `all`")
    best_hidden_score: float | None
    latency_ms: float
    text_matches: int = Field(description="photos whose text (OCR) matched the query")
    text_only: bool = Field(description="a `text:` query: OCR text alone, no CLIP")
    page: int
    page_size: int
    hits: list[HitOut]


def search_filters(user, params: SearchParams, where: str) -> SearchFilters:
    """The filters of a query, refusing what the web form would not offer this user."""
    if params.taken_after and params.taken_before and params.taken_after > params.taken_before:
        _invalid_param(where, "taken_before", "is before taken_after")
    if params.owner is not None and not user.is_staff:
        _invalid_param(where, "owner", "only staff can filter by uploader")
    if params.album is not None and not albums_visible_to(user).filter(pk=params.album).exists():
        raise Http404(f"No album {params.album}.")
    country = params.country.upper()
    return SearchFilters(
        taken_after=params.taken_after,
        taken_before=params.taken_before,
        camera=params.camera.strip(),
        has_location=params.has_location,
        owner_id=params.owner,
        album_id=params.album,
        tag=params.tag.strip(),
        media=params.show,
        country=country,
        city=params.city.strip(),
    )


def _invalid_param(where: str, name: str, message: str):
    raise ValidationError([{"loc": (where, name), "msg": message}])


def run_search(request: ApiRequest, params: SearchParams, *, where: str, **query) -> dict:
    """``photo_search`` for the caller, logged as an API search, one page of it as JSON."""
    user = request.auth
    filters = search_filters(user, params, where)
    text = params.q.strip()
    # "Similar" asks for the closest photos, so like the web pages it starts from loose.
    default = Strictness.LOOSE if query.get("similar_to") is not None else Strictness.NORMAL
    outcome: SearchOutcome = photo_search(
        user=user,
        text=text,
        filters=filters,
        strictness=params.strictness or default,
        sort=params.sort,
        place_words=params.place_words,
        **query,
    )
    search_log_record(user=user, outcome=outcome, query=text, filters=filters, via_api=True)
    offset = (params.page - 1) * params.page_size
    hits = outcome.hits[offset : offset + params.page_size]
    # Hits come without their owners: one query for the names of this page's owners.
    owner_ids = {hit.photo.owner_id for hit in hits}
    owners = dict(get_user_model().objects.filter(pk__in=owner_ids).values_list("pk", "username"))
    place = outcome.place
    return {
        "kind": outcome.kind,
        "query": text,
        "place": {
            "country_code": place.place.country_code,
            "country": place.place.country,
            "city": place.place.city,
            "label": place.place.label,
            "words": place.words,
            "remainder": place.remainder,
        }
        if place is not None
        else None,
        "scored": outcome.scored,
        "count": len(outcome.hits),
        "hidden": outcome.hidden,
        "min_score": outcome.min_score,
        "best_hidden_score": outcome.best_hidden_score,
        "latency_ms": outcome.latency_ms,
        "text_matches": outcome.text_matches,
        "text_only": outcome.text_only,
        "page": params.page,
        "page_size": params.page_size,
        "hits": [
            {
                "score": hit.score if outcome.scored else None,
                "clip_score": hit.clip_score,
                "matched_text": list(hit.matched),
                "moment_ms": hit.moment_ms if hit.photo.kind == Photo.Kind.VIDEO else None,
                "photo": photo_out(request, hit.photo, owner=owners[hit.photo.owner_id]),
            }
            for hit in hits
        ],
    }


SEARCHED = {200: SearchOut, 400: ErrorOut, **HIDDEN, **LIMITED}


@router.get(
    "/search",
    response=SEARCHED,
    summary="Search by text",
    description=(
        "Photos you may see (your own and those in albums shared with you), ranked by "
        "similarity to `q`, weak matches left out (see `strictness`). 400 for a query with "
        "nothing to look for; 404 for an album filter you cannot see."
    ),
    operation_id="search_text",
    tags=["search"],
)
def search_text(request: ApiRequest, params: Query[SearchParams]):
    return run_search(request, params, where="query")


@router.post(
    "/search/image",
    response=SEARCHED,
    summary="Search by an image",
    description=(
        "Multipart: `image`, the query image (decoded for this search, never stored), and "
        'the same fields as GET /api/search, where `q` steers the image ("at night").'
    ),
    operation_id="search_image",
    tags=["search"],
)
def search_image(request: ApiRequest, image: File[UploadedFile], params: Form[SearchParams]):
    try:
        query_image = decode_image(
            cast(BinaryIO, image), max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS
        )
    except ImageDecodeError as exc:
        raise HttpError(400, f"{display_filename(image.name)}: {exc}") from None
    return run_search(request, params, where="form", image=query_image)


@router.get(
    "/photos/{photo_id}/similar",
    response=SEARCHED,
    summary="Photos similar to one you can see",
    description=(
        "Ranked by similarity to the photo's stored vector; `q` steers it. 400 while the photo "
        "is not ready."
    ),
    operation_id="photos_similar",
    tags=["search"],
)
def photos_similar(request: ApiRequest, photo_id: int, params: Query[SearchParams]):
    photo = visible_photo(request.auth, photo_id)
    return run_search(request, params, where="query", similar_to=photo)
