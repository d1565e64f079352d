"""What the API's routers share: error shapes, text validation, the photo shape and paging."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.http import Http404, HttpRequest
from django.urls import reverse
from ninja import Schema
from pydantic import AfterValidator, Field

from search.models import Photo
from search.photos.selectors import PhotoState, photo_detail_for

# Errors -------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    loc: list[str | int]
    msg: str


class InvalidOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


def _storable(value: str) -> str:
    # PostgreSQL text cannot hold NUL, and a lone surrogate (JSON can carry one as "\ud800")
    # cannot be encoded as UTF-8: either would fail in the database, as a 500.
    if "\x00" in value:
        raise ValueError("Null characters are not allowed.")
    try:
        value.encode()
    except UnicodeEncodeError:
        raise ValueError("Unpaired surrogates are not allowed.") from None
    return value


# Every string the API takes from the client; the pattern tells the schema's readers about NUL.
Text = Annotated[
    str, AfterValidator(_storable), Field(json_schema_extra={"pattern": "^[^\\x00]*$"})
]

# A user name as sent: never empty (an empty name is no one to share with).
UserName = Annotated[
    str,
    Field(min_length=1, max_length=150),
    AfterValidator(_storable),
    Field(json_schema_extra={"pattern": "^[^\\x00]*$"}),
]


def sent_or_not(schema: dict) -> None:
    """``json_schema_extra`` for an optional query or form field: pydantic describes it as "the
    type or null", but a query string or a form cannot carry a null (it would arrive as the text
    "null", and be refused). The field is sent, with its type, or left out."""
    (option,) = [option for option in schema.pop("anyOf") if option != {"type": "null"}]
    if "$ref" in option:
        schema["allOf"] = [option]  # as pydantic does, so the field keeps its own description
    else:
        schema.update(option)
    if schema.get("default", ...) is None:
        del schema["default"]


class ApiRequest(HttpRequest):
    """What an operation receives: ``auth`` is the token's user (``app.BearerToken``)."""

    auth: Any


# What every operation may answer besides its success.
DENIED: dict[int, type[Schema]] = {401: ErrorOut, 422: InvalidOut}


HIDDEN: dict[int, type[Schema]] = {**DENIED, 404: ErrorOut}


# What every operation with a JSON body may answer besides: 415 for a body not sent as JSON.
JSON_BODY: dict[int, type[Schema]] = {415: ErrorOut}


# Upload and search are rate limited (search.rate_limits): 429 with Retry-After.
LIMITED: dict[int, type[Schema]] = {429: ErrorOut}


# Photos -------------------------------------------------------------------------------------

PhotoStatus = Literal["pending", "processing", "ready", "failed"]


class PhotoLinksOut(Schema):
    thumbnail: str | None = Field(description="null until the worker has made it")
    preview: str | None = Field(description="null until the worker has made it")
    original: str
    motion: str | None = Field(
        default=None,
        description="a Live Photo's or motion photo's clip (playable in a browser; "
        "`?download=1` gives it as uploaded); null for other items and until it is ready",
    )


class TagOut(Schema):
    name: str
    score: float


class PlaceOut(Schema):
    country_code: str = Field(description="ISO 3166-1 alpha-2", json_schema_extra={"example": "PT"})
    country: str = Field(json_schema_extra={"example": "Portugal"})
    region: str = Field(description="first-level division (GeoNames admin1); may be empty")
    city: str = Field(json_schema_extra={"example": "Lisbon"})


class PhotoOut(Schema):
    id: int
    filename: str = Field(description="the name the file was uploaded with")
    owner: str
    status: PhotoStatus
    failure_reason: str = Field(description="why processing failed; empty unless failed")
    format: str
    kind: Literal["photo", "video"]
    duration_ms: int | None = Field(description="a video's length; null for a photo")
    motion_status: Literal["", "pending", "ready", "failed"] = Field(
        description="a Live Photo's or motion photo's clip: being prepared, ready, or failed "
        "(with motion_failure_reason); empty for a photo without one, and for a video"
    )
    motion_failure_reason: str
    motion_duration_ms: int | None
    size_bytes: int
    width: int | None
    height: int | None
    taken_at: datetime | None
    camera_make: str
    camera_model: str
    latitude: float | None
    longitude: float | None
    place: PlaceOut | None = Field(
        description="where the position lies, from an offline reverse geocoder (GeoNames); "
        "null without a position, far from any town, or before it was looked up"
    )
    created_at: datetime
    processed_at: datetime | None
    files: PhotoLinksOut = Field(description="the files, through this API (bearer token)")
    web: PhotoLinksOut = Field(description="the same files on the web app (session login)")


class TextWordOut(Schema):
    text: str = Field(description="the word as read")
    confidence: float = Field(description="the engine's confidence, 0 to 1")
    box: list[float] = Field(
        description="left, top, right, bottom, as fractions of the picture's width and height"
    )


class PhotoTextOut(Schema):
    status: Literal["pending", "done", "failed"]
    engine: str = Field(description="the OCR engine that read it")
    text: str = Field(description="the words read, in reading order")
    failure_reason: str = Field(description="why it could not be read; empty unless failed")
    words: list[TextWordOut]


class PhotoDetailOut(PhotoOut):
    tags: list[TagOut] = Field(description="zero-shot tags under the active model, if any")
    text: PhotoTextOut | None = Field(
        description="the text read in the photo (OCR; a video: its poster); null until OCR "
        "has looked at it, or with OCR off"
    )


class PhotoPageOut(Schema):
    count: int
    page: int
    page_size: int
    items: list[PhotoOut]


def photo_state_out(state: PhotoState) -> dict:
    """What every JSON shape of a photo starts with, here and on the upload page
    (``search.photos.views``): which photo, and where its processing stands."""
    return {
        "id": state.id,
        "filename": state.filename,
        "status": state.status,
        "failure_reason": state.failure_reason,
    }


def photo_out(request: HttpRequest, photo: Photo, owner: str | None = None) -> dict:
    """A photo as the API shows it: ``owner`` is the owner's name, else ``photo.owner`` is read
    (select it with the photo)."""

    def links(names: dict[str, str]) -> dict[str, str | None]:
        present = {
            "thumbnail": bool(photo.thumbnail),
            "preview": bool(photo.preview),
            "motion": photo.motion_status == Photo.MotionStatus.READY,
        }
        return {
            kind: request.build_absolute_uri(reverse(name, args=[photo.pk]))
            if present.get(kind, True)
            else None
            for kind, name in names.items()
        }

    return {
        **photo_state_out(PhotoState.of(photo)),
        "owner": owner if owner is not None else photo.owner.get_username(),
        "format": photo.image_format,
        "kind": photo.kind,
        "duration_ms": photo.duration_ms,
        "motion_status": photo.motion_status,
        "motion_failure_reason": photo.motion_failure_reason,
        "motion_duration_ms": photo.motion_duration_ms,
        "size_bytes": photo.size_bytes,
        "width": photo.width,
        "height": photo.height,
        "taken_at": photo.taken_at,
        "camera_make": photo.camera_make,
        "camera_model": photo.camera_model,
        "latitude": photo.latitude,
        "longitude": photo.longitude,
        "place": {
            "country_code": photo.country_code,
            "country": photo.country,
            "region": photo.region,
            "city": photo.city,
        }
        if photo.country_code
        else None,
        "created_at": photo.created_at,
        "processed_at": photo.processed_at,
        "files": links(
            {
                "thumbnail": "api:photo_thumbnail",
                "preview": "api:photo_preview",
                "original": "api:photo_original",
                "motion": "api:photo_motion",
            }
        ),
        "web": links(
            {
                "thumbnail": "search:photo_thumbnail",
                "preview": "search:photo_preview",
                "original": "search:photo_original",
                "motion": "search:photo_motion",
            }
        ),
    }


# Far beyond any library, and small enough that the offset (page x page_size) stays a bigint:
# a larger one failed in PostgreSQL, as a 500.
MAX_PAGE = 1_000_000


class PageParams(Schema):
    status: PhotoStatus | None = Field(
        None, description="only photos in this state", json_schema_extra=sent_or_not
    )
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=200)


def photo_page(request: HttpRequest, photos, params: PageParams) -> dict:
    """One page of ``photos`` (owners selected with them), optionally only those in one state."""
    if params.status:
        photos = photos.filter(status=params.status)
    offset = (params.page - 1) * params.page_size
    page = photos[offset : offset + params.page_size]
    return {
        "count": photos.count(),
        "page": params.page,
        "page_size": params.page_size,
        "items": [photo_out(request, photo) for photo in page],
    }


def visible_photo(user, photo_id: int) -> Photo:
    try:
        return photo_detail_for(user=user, pk=photo_id)
    except Photo.DoesNotExist:
        raise Http404(f"No photo {photo_id}.") from None
