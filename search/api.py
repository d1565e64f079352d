"""The JSON API at /api/: the same services and selectors as the web pages, behind a bearer
token (see ``search.services.api_token_authenticate``). Schema: /api/openapi.json.

Anything the caller may not see answers 404, exactly as an id that does not exist would.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from ninja import File, Form, NinjaAPI, Query, Schema, Status, Swagger, UploadedFile
from ninja.errors import AuthenticationError, HttpError, ValidationError
from ninja.parser import Parser
from ninja.security import HttpBearer
from pydantic import AfterValidator, Field

from search.forms import QUERY_HELP
from search.models import Album, Photo
from search.query import SearchFilters, Sort, Strictness
from search.selectors import (
    SearchError,
    SearchOutcome,
    account_summary,
    albums_visible_to,
    photo_detail_for,
    photo_list_for,
    photo_search,
    photo_tags_for,
)
from search.services import (
    AlbumError,
    album_add_photos,
    album_create,
    album_delete,
    album_remove_photos,
    album_rename,
    album_share,
    album_unshare,
    api_token_authenticate,
    display_filename,
    photos_create_many,
    photos_delete,
    search_log_record,
)
from search.views import photo_file_response
from workers.embedding.active import get_engine
from workers.embedding.images import ImageDecodeError, decode_image


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(key=token)
        if user is not None:
            # The token decides who is calling, whatever session cookie came along.
            request.user = user
        return user


class BodyNotAnObject(ValueError):
    pass


class JsonObjectParser(Parser):
    """Every JSON body this API takes is an object. Ninja reads any other JSON value (a number,
    a list) as an empty object, and a rename (PATCH, all fields optional) then answered 200 to
    a body of 16461; see ``_http_error`` for the answer instead."""

    def parse_body(self, request: HttpRequest) -> dict:
        data = super().parse_body(request)
        if not isinstance(data, dict):
            raise BodyNotAnObject
        return data


api = NinjaAPI(
    title="MediaSearch API",
    version="1",
    description=(
        "Upload photos, follow their processing, search them by text, by image or by "
        "similarity, and manage albums. Every call needs `Authorization: Bearer <token>`; "
        "create a token on the web page /account/tokens/ or with "
        "`manage.py create_api_token <username>`."
    ),
    auth=BearerToken(),
    parser=JsonObjectParser(),
    urls_namespace="api",
    # Swagger UI from the static files django-ninja ships (ninja is in INSTALLED_APPS), so the
    # docs work offline; no validator badge, which would call an outside service.
    docs=Swagger(settings={"validatorUrl": None}),
)


# Errors -------------------------------------------------------------------------------------


class ErrorOut(Schema):
    detail: str


class FieldErrorOut(Schema):
    loc: list[str | int]
    msg: str


class InvalidOut(Schema):
    detail: str
    errors: list[FieldErrorOut]


@api.exception_handler(AuthenticationError)
def _unauthenticated(request: HttpRequest, exc: AuthenticationError) -> HttpResponse:
    response = api.create_response(
        request,
        {
            "detail": "A valid API token is required: send 'Authorization: Bearer <token>'. "
            "Tokens are made on /account/tokens/."
        },
        status=401,
    )
    response["WWW-Authenticate"] = 'Bearer realm="MediaSearch"'
    return response


@api.exception_handler(Http404)
def _not_found(request: HttpRequest, exc: Http404) -> HttpResponse:
    return api.create_response(request, {"detail": str(exc) or "Not found."}, status=404)


@api.exception_handler(ValidationError)
def _invalid(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    errors = [{"loc": _field(error.get("loc", ())), "msg": error["msg"]} for error in exc.errors]
    detail = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in errors
    )
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


def _field(loc) -> list[str | int]:
    """The name a client knows from the schema: ninja's ``loc`` starts with where the value came
    from (query, path, form, file, body) and, for a JSON body, the view's parameter name."""
    where, *rest = loc or ("",)
    if where == "body":
        return rest[1:] or ["body"]
    return rest


@api.exception_handler(HttpError)
def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    # Ninja turns whatever the parser raises into 400 "Cannot parse request body": right for
    # JSON that does not parse, but a body that parses to something else is invalid, like a
    # missing field.
    if isinstance(exc.__cause__, BodyNotAnObject):
        return _invalid(request, ValidationError([{"loc": ("body",), "msg": "must be an object"}]))
    return api.create_response(request, {"detail": str(exc)}, status=exc.status_code)


@api.exception_handler(SearchError)
@api.exception_handler(AlbumError)
def _refused(request: HttpRequest, exc: ValueError) -> HttpResponse:
    # The services word these for the user already.
    return api.create_response(request, {"detail": str(exc)}, status=400)


@api.exception_handler(TooManyFilesSent)
def _too_many_files(request: HttpRequest, exc: TooManyFilesSent) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return api.create_response(
        request, {"detail": f"Too many files: send at most {limit} per request."}, status=400
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


def unknown_endpoint(request: HttpRequest, path: str) -> JsonResponse:
    """Any other address under /api/ (mounted after the API's own URLs)."""
    return JsonResponse({"detail": "No such API endpoint; see /api/docs."}, status=404)


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


def _sent_or_not(schema: dict) -> None:
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


# What every operation may answer besides its success.
DENIED: dict[int, type[Schema]] = {401: ErrorOut, 422: InvalidOut}
HIDDEN: dict[int, type[Schema]] = {**DENIED, 404: ErrorOut}
# Upload and search are rate limited (search.rate_limits): 429 with Retry-After.
LIMITED: dict[int, type[Schema]] = {429: ErrorOut}


# Photos -------------------------------------------------------------------------------------

PhotoStatus = Literal["pending", "processing", "ready", "failed"]


class PhotoLinksOut(Schema):
    thumbnail: str | None = Field(description="null until the worker has made it")
    preview: str | None = Field(description="null until the worker has made it")
    original: str


class TagOut(Schema):
    name: str
    score: float


class PhotoOut(Schema):
    id: int
    filename: str = Field(description="the name the file was uploaded with")
    owner: str
    status: PhotoStatus
    failure_reason: str = Field(description="why processing failed; empty unless failed")
    format: str
    size_bytes: int
    width: int | None
    height: int | None
    taken_at: datetime | None
    camera_make: str
    camera_model: str
    latitude: float | None
    longitude: float | None
    created_at: datetime
    processed_at: datetime | None
    files: PhotoLinksOut = Field(description="the files, through this API (bearer token)")
    web: PhotoLinksOut = Field(description="the same files on the web app (session login)")


class PhotoDetailOut(PhotoOut):
    tags: list[TagOut] = Field(description="zero-shot tags under the active model, if any")


class PhotoPageOut(Schema):
    count: int
    page: int
    page_size: int
    items: list[PhotoOut]


class UploadResultOut(Schema):
    filename: str
    outcome: Literal["created", "duplicate", "rejected"]
    reason: str = Field(description="why the file was refused; empty otherwise")
    photo: PhotoOut | None = Field(description="the new photo, or the one it duplicates")


class UploadOut(Schema):
    created: int
    duplicates: int
    rejected: int
    results: list[UploadResultOut] = Field(description="one per file, in the order sent")


def photo_out(request: HttpRequest, photo: Photo, owner: str | None = None) -> dict:
    """A photo as the API shows it: ``owner`` is the owner's name, else ``photo.owner`` is read
    (select it with the photo)."""

    def links(names: dict[str, str]) -> dict[str, str | None]:
        present = {"thumbnail": bool(photo.thumbnail), "preview": bool(photo.preview)}
        return {
            kind: request.build_absolute_uri(reverse(name, args=[photo.pk]))
            if present.get(kind, True)
            else None
            for kind, name in names.items()
        }

    return {
        "id": photo.pk,
        "filename": photo.original_filename,
        "owner": owner if owner is not None else photo.owner.get_username(),
        "status": photo.status,
        "failure_reason": photo.failure_reason,
        "format": photo.image_format,
        "size_bytes": photo.size_bytes,
        "width": photo.width,
        "height": photo.height,
        "taken_at": photo.taken_at,
        "camera_make": photo.camera_make,
        "camera_model": photo.camera_model,
        "latitude": photo.latitude,
        "longitude": photo.longitude,
        "created_at": photo.created_at,
        "processed_at": photo.processed_at,
        "files": links(
            {
                "thumbnail": "api:photo_thumbnail",
                "preview": "api:photo_preview",
                "original": "api:photo_original",
            }
        ),
        "web": links(
            {
                "thumbnail": "search:photo_thumbnail",
                "preview": "search:photo_preview",
                "original": "search:photo_original",
            }
        ),
    }


# Far beyond any library, and small enough that the offset (page x page_size) stays a bigint:
# a larger one failed in PostgreSQL, as a 500.
MAX_PAGE = 1_000_000


class PageParams(Schema):
    status: PhotoStatus | None = Field(
        None, description="only photos in this state", json_schema_extra=_sent_or_not
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


@api.post(
    "/photos",
    response={200: UploadOut, 400: ErrorOut, 413: ErrorOut, **DENIED, **LIMITED},
    summary="Upload photos",
    description=(
        "Multipart upload of one or more files in the field `files`. Each file is judged on "
        "its own: the answer lists every file, in order, as created (queued for processing), "
        "duplicate (you already have these exact bytes: the existing photo) or rejected "
        "(with the reason). Follow processing with GET /api/photos/{id}."
    ),
    operation_id="photos_upload",
    tags=["photos"],
)
def photos_upload(request: HttpRequest, files: Annotated[list[UploadedFile], File(min_length=1)]):
    report = photos_create_many(owner=request.auth, files=files)
    owner = request.auth.get_username()  # every photo of the answer is the caller's
    return report.summary(lambda photo: photo_out(request, photo, owner))


@api.get(
    "/photos",
    response={200: PhotoPageOut, **DENIED},
    summary="List your photos",
    description="Your own photos, newest first, optionally only those in one state.",
    operation_id="photos_list",
    tags=["photos"],
)
def photos_list(
    request: HttpRequest,
    params: Query[PageParams],
):
    photos = photo_list_for(user=request.auth).select_related("owner")
    return photo_page(request, photos, params)


@api.get(
    "/photos/{photo_id}",
    response={200: PhotoDetailOut, **HIDDEN},
    summary="One photo: status, metadata, tags, links",
    description="Your own photos, those in albums shared with you, and (for staff) any photo.",
    operation_id="photos_detail",
    tags=["photos"],
)
def photos_detail(request: HttpRequest, photo_id: int):
    photo = visible_photo(request.auth, photo_id)
    tags = photo_tags_for(photo=photo, model_id=get_engine().model_id)
    return {
        **photo_out(request, photo),
        "tags": [{"name": tag.name, "score": tag.score} for tag in tags],
    }


@api.delete(
    "/photos/{photo_id}",
    response={204: None, **HIDDEN},
    summary="Delete one of your photos",
    description=(
        "Deletes the photo with its files, vector, tags and near-duplicate pairs, and takes it "
        "out of every album. Only your own photos: any other id answers 404, also a photo you "
        "see through an album shared with you."
    ),
    operation_id="photos_delete",
    tags=["photos"],
)
def photos_destroy(request: HttpRequest, photo_id: int):
    if not photos_delete(owner=request.auth, photo_ids=[photo_id]):
        raise Http404(f"No photo {photo_id}.")
    return Status(204, None)


FILE_RESPONSES = {
    200: {
        "description": "The file, streamed, with its content type and a Content-Disposition "
        "that names it.",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    }
}


def _photo_file(request: HttpRequest, photo_id: int, kind: str, download: bool = False):
    return photo_file_response(
        photo=visible_photo(request.auth, photo_id), kind=kind, download=download
    )


@api.get(
    "/photos/{photo_id}/thumbnail",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The photo's thumbnail (JPEG)",
    description="404 also while the worker has not made it yet.",
    operation_id="photos_thumbnail",
    tags=["photos"],
    url_name="photo_thumbnail",
)
def photos_thumbnail(request: HttpRequest, photo_id: int):
    return _photo_file(request, photo_id, "thumbnail")


@api.get(
    "/photos/{photo_id}/preview",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The photo's large preview (JPEG)",
    description="404 also while the worker has not made it yet.",
    operation_id="photos_preview",
    tags=["photos"],
    url_name="photo_preview",
)
def photos_preview(request: HttpRequest, photo_id: int):
    return _photo_file(request, photo_id, "preview")


@api.get(
    "/photos/{photo_id}/original",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The original file, as uploaded",
    description="`download=true` asks for it as an attachment rather than inline.",
    operation_id="photos_original",
    tags=["photos"],
    url_name="photo_original",
)
def photos_original(request: HttpRequest, photo_id: int, download: bool = False):
    return _photo_file(request, photo_id, "original", download)


# Account ------------------------------------------------------------------------------------


class MeOut(Schema):
    username: str
    is_staff: bool
    photos: int
    photos_by_status: dict[str, int]
    albums: int = Field(description="albums you own")
    shared_albums: int = Field(description="albums others share with you")


@api.get(
    "/me",
    response={200: MeOut, **DENIED},
    summary="Who the token belongs to, with counts",
    operation_id="me",
    tags=["account"],
)
def me(request: HttpRequest):
    summary = account_summary(user=request.auth)
    return {
        "username": request.auth.get_username(),
        "is_staff": request.auth.is_staff,
        "photos": summary.photos,
        "photos_by_status": summary.photos_by_status,
        "albums": summary.albums,
        "shared_albums": summary.shared_albums,
    }


# Search -------------------------------------------------------------------------------------


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
        json_schema_extra=_sent_or_not,
    )
    sort: Sort = Sort.RELEVANCE
    taken_after: date | None = Field(
        None, description="taken on or after this day", json_schema_extra=_sent_or_not
    )
    taken_before: date | None = Field(
        None, description="taken on or before this day", json_schema_extra=_sent_or_not
    )
    camera: Text = Field("", max_length=100, description="camera make or model, exactly")
    has_location: bool | None = Field(None, json_schema_extra=_sent_or_not)
    album: int | None = Field(
        None, description="only photos in this album (its id)", json_schema_extra=_sent_or_not
    )
    tag: Text = Field("", max_length=100, description="only photos with this zero-shot tag")
    owner: int | None = Field(
        None,
        description="staff only: photos uploaded by this user id",
        json_schema_extra=_sent_or_not,
    )
    page: int = Field(1, ge=1, le=MAX_PAGE)
    page_size: int = Field(50, ge=1, le=200)


class HitOut(Schema):
    score: float = Field(description="cosine similarity to the query; 1 is the same direction")
    photo: PhotoOut


class SearchOut(Schema):
    kind: Literal["text", "image", "similar"]
    query: str
    count: int = Field(description="good matches in all (the hits are one page of them)")
    hidden: int = Field(description="ranked photos left out as weak matches")
    min_score: float | None = Field(description="the cut-off applied; null for `all`")
    best_hidden_score: float | None
    latency_ms: float
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
    return SearchFilters(
        taken_after=params.taken_after,
        taken_before=params.taken_before,
        camera=params.camera.strip(),
        has_location=params.has_location,
        owner_id=params.owner,
        album_id=params.album,
        tag=params.tag.strip(),
    )


def _invalid_param(where: str, name: str, message: str):
    raise ValidationError([{"loc": (where, name), "msg": message}])


def run_search(request: HttpRequest, params: SearchParams, *, where: str, **query) -> dict:
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
        **query,
    )
    search_log_record(user=user, outcome=outcome, query=text, filters=filters, via_api=True)
    offset = (params.page - 1) * params.page_size
    hits = outcome.hits[offset : offset + params.page_size]
    # Hits come without their owners: one query for the names of this page's owners.
    owner_ids = {hit.photo.owner_id for hit in hits}
    owners = dict(get_user_model().objects.filter(pk__in=owner_ids).values_list("pk", "username"))
    return {
        "kind": outcome.kind,
        "query": text,
        "count": len(outcome.hits),
        "hidden": outcome.hidden,
        "min_score": outcome.min_score,
        "best_hidden_score": outcome.best_hidden_score,
        "latency_ms": outcome.latency_ms,
        "page": params.page,
        "page_size": params.page_size,
        "hits": [
            {
                "score": hit.score,
                "photo": photo_out(request, hit.photo, owner=owners[hit.photo.owner_id]),
            }
            for hit in hits
        ],
    }


SEARCHED = {200: SearchOut, 400: ErrorOut, **HIDDEN, **LIMITED}


@api.get(
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
def search_text(request: HttpRequest, params: Query[SearchParams]):
    return run_search(request, params, where="query")


@api.post(
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
def search_image(request: HttpRequest, image: File[UploadedFile], params: Form[SearchParams]):
    try:
        query_image = decode_image(image, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS)
    except ImageDecodeError as exc:
        raise HttpError(400, f"{display_filename(image.name)}: {exc}") from None
    return run_search(request, params, where="form", image=query_image)


@api.get(
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
def photos_similar(request: HttpRequest, photo_id: int, params: Query[SearchParams]):
    photo = visible_photo(request.auth, photo_id)
    return run_search(request, params, where="query", similar_to=photo)


# Albums -------------------------------------------------------------------------------------


class AlbumOut(Schema):
    id: int
    name: str
    owner: str
    is_owner: bool = Field(description="false: shared with you, read-only")
    photo_count: int
    shared_with: list[str] | None = Field(description="user names; null unless you own it")
    created_at: datetime
    updated_at: datetime


class AlbumIn(Schema):
    name: Text = Field(min_length=1, max_length=200)


class AlbumPatch(Schema):
    name: Text | None = Field(None, min_length=1, max_length=200)


class PhotoIdsIn(Schema):
    photo_ids: list[int] = Field(min_length=1, max_length=1000)


class UsernamesIn(Schema):
    usernames: list[Text] = Field(min_length=1, max_length=100)


class PhotosAddedOut(Schema):
    added: int = Field(description="photos added; ids of photos that are not yours are ignored")
    album: AlbumOut


class PhotosRemovedOut(Schema):
    removed: int
    album: AlbumOut


def visible_album(user, album_id: int) -> Album:
    album = albums_visible_to(user).prefetch_related("shared_with").filter(pk=album_id).first()
    if album is None:
        raise Http404(f"No album {album_id}.")
    return album


def owned_album(user, album_id: int) -> Album:
    album = visible_album(user, album_id)
    if album.owner_id != user.pk:
        # They can see it, so saying that it exists reveals nothing.
        raise HttpError(403, "This album is shared with you read-only: only its owner changes it.")
    return album


def album_out(user, album: Album) -> dict:
    """An album from ``albums_visible_to`` (with its photo count and owner)."""
    is_owner = album.owner_id == user.pk
    return {
        "id": album.pk,
        "name": album.name,
        "owner": album.owner.get_username(),
        "is_owner": is_owner,
        "photo_count": album.photo_count,
        "shared_with": sorted(u.get_username() for u in album.shared_with.all())
        if is_owner
        else None,
        "created_at": album.created_at,
        "updated_at": album.updated_at,
    }


OWNED = {**HIDDEN, 400: ErrorOut, 403: ErrorOut}


@api.get(
    "/albums",
    response={200: list[AlbumOut], **DENIED},
    summary="Your albums and those shared with you",
    operation_id="albums_list",
    tags=["albums"],
)
def albums_list(request: HttpRequest):
    albums = albums_visible_to(request.auth).prefetch_related("shared_with")
    return [album_out(request.auth, album) for album in albums]


@api.post(
    "/albums",
    response={201: AlbumOut, 400: ErrorOut, **DENIED},
    summary="Create an album",
    operation_id="albums_create",
    tags=["albums"],
)
def albums_create(request: HttpRequest, payload: AlbumIn):
    album = album_create(owner=request.auth, name=payload.name)
    return Status(201, album_out(request.auth, visible_album(request.auth, album.pk)))


@api.get(
    "/albums/{album_id}",
    response={200: AlbumOut, **HIDDEN},
    summary="One album",
    operation_id="albums_detail",
    tags=["albums"],
)
def albums_detail(request: HttpRequest, album_id: int):
    return album_out(request.auth, visible_album(request.auth, album_id))


@api.patch(
    "/albums/{album_id}",
    response={200: AlbumOut, **OWNED},
    summary="Rename an album (owner only)",
    operation_id="albums_update",
    tags=["albums"],
)
def albums_update(request: HttpRequest, album_id: int, payload: AlbumPatch):
    album = owned_album(request.auth, album_id)
    if payload.name is not None:
        album_rename(album=album, name=payload.name)
    return album_out(request.auth, visible_album(request.auth, album_id))


@api.delete(
    "/albums/{album_id}",
    response={204: None, **OWNED},
    summary="Delete an album (owner only); its photos are kept",
    operation_id="albums_delete",
    tags=["albums"],
)
def albums_delete(request: HttpRequest, album_id: int):
    album_delete(album=owned_album(request.auth, album_id))
    return Status(204, None)


@api.get(
    "/albums/{album_id}/photos",
    response={200: PhotoPageOut, **HIDDEN},
    summary="The photos of an album",
    description="Newest taken first, optionally only those in one state.",
    operation_id="albums_photos",
    tags=["albums"],
)
def albums_photos(
    request: HttpRequest,
    album_id: int,
    params: Query[PageParams],
):
    album = visible_album(request.auth, album_id)
    photos = album.photos.select_related("owner").order_by("-taken_at", "-id")
    return photo_page(request, photos, params)


@api.post(
    "/albums/{album_id}/photos",
    response={200: PhotosAddedOut, **OWNED},
    summary="Add your photos to your album",
    operation_id="albums_photos_add",
    tags=["albums"],
)
def albums_photos_add(request: HttpRequest, album_id: int, payload: PhotoIdsIn):
    album = owned_album(request.auth, album_id)
    added = album_add_photos(album=album, photo_ids=payload.photo_ids)
    return {"added": added, "album": album_out(request.auth, visible_album(request.auth, album_id))}


@api.delete(
    "/albums/{album_id}/photos",
    response={200: PhotosRemovedOut, **OWNED},
    summary="Take photos out of your album (they stay in your library)",
    operation_id="albums_photos_remove",
    tags=["albums"],
)
def albums_photos_remove(request: HttpRequest, album_id: int, payload: PhotoIdsIn):
    album = owned_album(request.auth, album_id)
    removed = album_remove_photos(album=album, photo_ids=payload.photo_ids)
    return {
        "removed": removed,
        "album": album_out(request.auth, visible_album(request.auth, album_id)),
    }


@api.post(
    "/albums/{album_id}/shares",
    response={200: AlbumOut, **OWNED},
    summary="Share your album with users (read-only for them)",
    description="400, sharing with nobody, when any user name is unknown.",
    operation_id="albums_share",
    tags=["albums"],
)
def albums_share(request: HttpRequest, album_id: int, payload: UsernamesIn):
    album_share(album=owned_album(request.auth, album_id), usernames=payload.usernames)
    return album_out(request.auth, visible_album(request.auth, album_id))


@api.delete(
    "/albums/{album_id}/shares",
    response={200: AlbumOut, **OWNED},
    summary="Stop sharing your album with users",
    operation_id="albums_unshare",
    tags=["albums"],
)
def albums_unshare(request: HttpRequest, album_id: int, payload: UsernamesIn):
    album_unshare(album=owned_album(request.auth, album_id), usernames=payload.usernames)
    return album_out(request.auth, visible_album(request.auth, album_id))
