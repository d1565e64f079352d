"""The JSON API at /api/: the same services and selectors as the web pages, behind a bearer
token (see ``search.services.api_token_authenticate``). Schema: /api/openapi.json.

Anything the caller may not see answers 404, exactly as an id that does not exist would.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFilesSent
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from ninja import File, NinjaAPI, Query, Schema, Swagger, UploadedFile
from ninja.errors import AuthenticationError, ValidationError
from ninja.security import HttpBearer
from pydantic import Field

from search.models import Photo
from search.selectors import account_summary, photo_list_for
from search.services import api_token_authenticate, photos_create_many
from search.views import photo_file_response
from workers.embedding.active import get_engine


class BearerToken(HttpBearer):
    def authenticate(self, request: HttpRequest, token: str):
        user = api_token_authenticate(key=token)
        if user is not None:
            # The token decides who is calling, whatever session cookie came along.
            request.user = user
        return user


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
    errors = [
        # The first element says where (query, path, body, form, file): not part of the name.
        {"loc": [part for part in error.get("loc", ())][1:], "msg": error.get("msg", "")}
        for error in exc.errors
    ]
    detail = "; ".join(
        f"{'.'.join(str(part) for part in error['loc']) or 'request'}: {error['msg']}"
        for error in errors
    )
    return api.create_response(request, {"detail": detail, "errors": errors}, status=422)


@api.exception_handler(TooManyFilesSent)
def _too_many_files(request: HttpRequest, exc: TooManyFilesSent) -> HttpResponse:
    limit = settings.DATA_UPLOAD_MAX_NUMBER_FILES
    return api.create_response(
        request, {"detail": f"Too many files: send at most {limit} per request."}, status=400
    )


@api.exception_handler(RequestDataTooBig)
def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return api.create_response(request, {"detail": "The request body is too large."}, status=413)


# What every operation may answer besides its success.
DENIED: dict[int, type[Schema]] = {401: ErrorOut, 422: InvalidOut}
HIDDEN: dict[int, type[Schema]] = {**DENIED, 404: ErrorOut}


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


def photo_out(request: HttpRequest, photo: Photo) -> dict:
    """A photo as the API shows it. ``photo.owner`` should be selected with it."""

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
        "owner": photo.owner.get_username(),
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


def visible_photo(user, photo_id: int) -> Photo:
    photos = Photo.objects.select_related("owner")
    if not user.is_staff:
        photos = photos.filter(owner=user)
    photo = photos.filter(pk=photo_id).first()
    if photo is None:
        raise Http404(f"No photo {photo_id}.")
    return photo


@api.post(
    "/photos",
    response={200: UploadOut, 400: ErrorOut, 413: ErrorOut, **DENIED},
    summary="Upload photos",
    description=(
        "Multipart upload of one or more files in the field `files`. Each file is judged on "
        "its own: the answer lists every file, in order, as created (queued for processing), "
        "duplicate (you already have these exact bytes: the existing photo) or rejected "
        "(with the reason). Follow processing with GET /api/photos/{id}."
    ),
    operation_id="photos_upload",
)
def photos_upload(request: HttpRequest, files: File[list[UploadedFile]]):
    report = photos_create_many(owner=request.auth, files=files)
    return {
        "created": len(report.created),
        "duplicates": len(report.duplicates),
        "rejected": len(report.rejected),
        "results": [
            {
                "filename": item.filename,
                "outcome": item.outcome,
                "reason": item.reason,
                "photo": photo_out(request, item.photo) if item.photo else None,
            }
            for item in report.items
        ],
    }


@api.get(
    "/photos",
    response={200: PhotoPageOut, **DENIED},
    summary="List your photos",
    description="Your own photos, newest first, optionally only those in one state.",
    operation_id="photos_list",
)
def photos_list(
    request: HttpRequest,
    status: PhotoStatus | None = None,
    page: int = Query(1, ge=1),
    page_size: int = Query(50, ge=1, le=200),
):
    photos = photo_list_for(user=request.auth).select_related("owner")
    if status:
        photos = photos.filter(status=status)
    offset = (page - 1) * page_size
    return {
        "count": photos.count(),
        "page": page,
        "page_size": page_size,
        "items": [photo_out(request, photo) for photo in photos[offset : offset + page_size]],
    }


@api.get(
    "/photos/{photo_id}",
    response={200: PhotoDetailOut, **HIDDEN},
    summary="One photo: status, metadata, tags, links",
    operation_id="photos_detail",
)
def photos_detail(request: HttpRequest, photo_id: int):
    photo = visible_photo(request.auth, photo_id)
    tags = photo.tags.filter(model_id=get_engine().model_id) if photo.tags.exists() else []
    return {
        **photo_out(request, photo),
        "tags": [{"name": tag.name, "score": tag.score} for tag in tags],
    }


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
