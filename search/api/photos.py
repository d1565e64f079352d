"""API: upload, list, inspect, delete photos and fetch their files."""

from __future__ import annotations

from typing import Annotated, Literal

from django.http import Http404
from ninja import File, Query, Router, Schema, Status, UploadedFile
from pydantic import Field

from search.api.schemas import (
    DENIED,
    HIDDEN,
    LIMITED,
    ApiRequest,
    ErrorOut,
    PageParams,
    PhotoDetailOut,
    PhotoOut,
    PhotoPageOut,
    photo_out,
    photo_page,
    visible_photo,
)
from search.photos.files import photo_file_response
from search.photos.selectors import photo_list_for
from search.photos.services import photos_create_many, photos_delete
from search.tags.selectors import photo_tags_for
from search.text.selectors import photo_text_view
from workers.active_engine import get_engine

router = Router()


class UploadResultOut(Schema):
    filename: str
    outcome: Literal["created", "duplicate", "paired", "rejected"] = Field(
        description="paired: the file is the motion of a Live Photo whose still was already "
        "there; it became that photo's motion, and `photo` is the still"
    )
    reason: str = Field(description="why the file was refused; empty otherwise")
    photo: PhotoOut | None = Field(
        description="the new photo, the one it duplicates, or the still it was paired with"
    )


class UploadOut(Schema):
    created: int
    duplicates: int
    rejected: int
    results: list[UploadResultOut] = Field(description="one per file, in the order sent")


@router.post(
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
def photos_upload(request: ApiRequest, files: Annotated[list[UploadedFile], File(min_length=1)]):
    report = photos_create_many(owner=request.auth, files=files)
    owner = request.auth.get_username()  # every photo of the answer is the caller's
    return report.summary(lambda photo: photo_out(request, photo, owner))


@router.get(
    "/photos",
    response={200: PhotoPageOut, **DENIED},
    summary="List your photos",
    description="Your own photos, newest first, optionally only those in one state.",
    operation_id="photos_list",
    tags=["photos"],
)
def photos_list(
    request: ApiRequest,
    params: Query[PageParams],
):
    photos = photo_list_for(user=request.auth).select_related("owner")
    return photo_page(request, photos, params)


@router.get(
    "/photos/{photo_id}",
    response={200: PhotoDetailOut, **HIDDEN},
    summary="One photo: status, metadata, tags, links",
    description="Your own photos, those in albums shared with you, and (for staff) any photo.",
    operation_id="photos_detail",
    tags=["photos"],
)
def photos_detail(request: ApiRequest, photo_id: int):
    photo = visible_photo(request.auth, photo_id)
    tags = photo_tags_for(photo=photo, model_id=get_engine().model_id)
    text = photo_text_view(photo=photo)
    return {
        **photo_out(request, photo),
        "tags": [{"name": tag.name, "score": tag.score} for tag in tags],
        "text": None
        if text is None
        else {
            "status": text.status,
            "engine": text.engine,
            "text": text.text,
            "failure_reason": text.failure_reason,
            "words": [
                {
                    "text": box.text,
                    "confidence": box.confidence,
                    "box": [
                        round(box.left / 100, 4),
                        round(box.top / 100, 4),
                        round((box.left + box.width) / 100, 4),
                        round((box.top + box.height) / 100, 4),
                    ],
                }
                for box in text.boxes
            ],
        },
    }


@router.delete(
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
def photos_destroy(request: ApiRequest, photo_id: int):
    if not photos_delete(owner=request.auth, photo_ids=[photo_id]):
        raise Http404(f"No photo {photo_id}.")
    return Status(204, None)


FILE_RESPONSES = {
    200: {
        "description": "The file, streamed, with its content type and a Content-Disposition "
        "that names it. `Accept-Ranges: bytes`: a `Range` header asks for part of it.",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    206: {
        "description": "The one byte range that the `Range` header asked for, with its "
        "`Content-Range`. Several ranges in one header are answered with 200 and the whole file.",
        "content": {"image/*": {"schema": {"type": "string", "format": "binary"}}},
    },
    416: {
        "description": "The range starts past the end of the file; `Content-Range: bytes */size` "
        "gives its size.",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}},
    },
}


# A clip: the playable MP4, or (to download) a Live Photo's MOV as uploaded.
_VIDEO = {"schema": {"type": "string", "format": "binary"}}
MOTION_RESPONSES = {
    status: {**answer, "content": {"video/mp4": _VIDEO, "video/quicktime": _VIDEO}}
    if status in (200, 206)
    else answer
    for status, answer in FILE_RESPONSES.items()
}


def _photo_file(request: ApiRequest, photo_id: int, kind: str, download: bool = False):
    return photo_file_response(
        request, photo=visible_photo(request.auth, photo_id), kind=kind, download=download
    )


# HEAD answers what GET would, without the body (a player asks for the size first); it is left
# out of the schema, which would otherwise list every file operation twice.
@router.api_operation(["HEAD"], "/photos/{photo_id}/thumbnail", include_in_schema=False)
@router.get(
    "/photos/{photo_id}/thumbnail",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The photo's thumbnail (JPEG)",
    description="404 also while the worker has not made it yet.",
    operation_id="photos_thumbnail",
    tags=["photos"],
    url_name="photo_thumbnail",
)
def photos_thumbnail(request: ApiRequest, photo_id: int):
    return _photo_file(request, photo_id, "thumbnail")


@router.api_operation(["HEAD"], "/photos/{photo_id}/preview", include_in_schema=False)
@router.get(
    "/photos/{photo_id}/preview",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The photo's large preview (JPEG)",
    description="404 also while the worker has not made it yet.",
    operation_id="photos_preview",
    tags=["photos"],
    url_name="photo_preview",
)
def photos_preview(request: ApiRequest, photo_id: int):
    return _photo_file(request, photo_id, "preview")


@router.api_operation(["HEAD"], "/photos/{photo_id}/original", include_in_schema=False)
@router.get(
    "/photos/{photo_id}/original",
    response=HIDDEN,
    openapi_extra={"responses": FILE_RESPONSES},
    summary="The original file, as uploaded",
    description="`download=true` asks for it as an attachment rather than inline.",
    operation_id="photos_original",
    tags=["photos"],
    url_name="photo_original",
)
def photos_original(request: ApiRequest, photo_id: int, download: bool = False):
    return _photo_file(request, photo_id, "original", download)


@router.api_operation(["HEAD"], "/photos/{photo_id}/motion", include_in_schema=False)
@router.get(
    "/photos/{photo_id}/motion",
    response=HIDDEN,
    openapi_extra={"responses": MOTION_RESPONSES},
    summary="A Live Photo's or motion photo's clip",
    description="An MP4 a browser plays; `download=true` gives the clip as uploaded (a Live "
    "Photo's MOV) or as extracted. 404 for a photo without motion, or until it is ready.",
    operation_id="photos_motion",
    tags=["photos"],
    url_name="photo_motion",
)
def photos_motion(request: ApiRequest, photo_id: int, download: bool = False):
    return _photo_file(request, photo_id, "motion", download)
