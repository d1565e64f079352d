"""Serving a photo's files (original, thumbnail, preview) to someone who may see it: the
web pages and the JSON API both answer through ``photo_file_response``, with byte ranges
(``search.photos.ranges``) so that a player can seek."""

from __future__ import annotations

from django.conf import settings
from django.http import Http404, HttpRequest, HttpResponseBase

from search.models import Photo
from search.photos.ranges import file_response
from workers.embedding.images import ImageFormat, format_info
from workers.embedding.video import VIDEO_FORMATS, VideoFormat

# A file whose format is outside the allowlist (none is stored today) is served as bytes.
UNKNOWN_CONTENT_TYPE = "application/octet-stream"
UNKNOWN_EXTENSION = ".bin"


def photo_file_response(
    request: HttpRequest, *, photo: Photo, kind: str, download: bool = False
) -> HttpResponseBase:
    """Stream the original, thumbnail or preview of a photo the caller may see (the web pages
    and the JSON API both serve files through this): all of it, or the range the request asks
    for. Raises Http404 for a derived file that the worker has not made yet."""
    if kind == "motion":
        response = _motion_response(request, photo, download=download)
    elif kind == "playable":
        if not photo.playable:
            raise Http404("This video has no playable copy; its original plays as it is.")
        stem = photo.original_filename.rsplit(".", 1)[0]
        response = file_response(
            request, photo.playable, content_type="video/mp4", filename=f"{stem}-playable.mp4"
        )
    elif kind in ("thumbnail", "preview"):
        derived = photo.thumbnail if kind == "thumbnail" else photo.preview
        if not derived:
            raise Http404(f"The {kind} is not made yet.")
        stem = photo.original_filename.rsplit(".", 1)[0]
        response = file_response(
            request, derived, content_type="image/jpeg", filename=f"{stem}-{kind}.jpg"
        )
    else:
        known = media_format(photo)
        response = file_response(
            request,
            photo.file,
            content_type=known.mime_type if known else UNKNOWN_CONTENT_TYPE,
            # A format outside the allowlist is never shown inline, only downloaded.
            as_attachment=download or known is None,
            filename=download_filename(photo),
        )
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = settings.MEDIASEARCH_CSP_FILES
    return response


def _motion_response(request: HttpRequest, photo: Photo, *, download: bool) -> HttpResponseBase:
    """A Live Photo's or motion photo's clip: the playable copy to play (when one was made),
    the clip as it was uploaded or extracted to download."""
    if photo.motion_status != Photo.MotionStatus.READY:
        raise Http404("This photo has no motion, or it is not ready.")
    stem = photo.original_filename.rsplit(".", 1)[0] or "photo"
    if photo.motion_playable and not download:
        return file_response(
            request, photo.motion_playable, content_type="video/mp4", filename=f"{stem}-live.mp4"
        )
    quicktime = photo.motion.name.lower().endswith(".mov")
    return file_response(
        request,
        photo.motion,
        content_type="video/quicktime" if quicktime else "video/mp4",
        as_attachment=download,
        filename=f"{stem}{'.mov' if quicktime else '-motion.mp4'}",
    )


def media_format(photo: Photo) -> ImageFormat | VideoFormat | None:
    """The allowlisted format of a photo's or a video's original (its type and extension)."""
    if photo.kind == Photo.Kind.VIDEO:
        return VIDEO_FORMATS.get(photo.image_format.lower())
    return format_info(photo.image_format)


def download_filename(photo: Photo) -> str:
    """The original's name with the extension of the format its bytes are in: a JPEG uploaded
    as ``x.html`` downloads as ``x.jpg``, so that nothing opens it as what its name claimed."""
    stem = photo.original_filename.rsplit(".", 1)[0] or "photo"
    known = media_format(photo)
    return stem + (known.extension if known else UNKNOWN_EXTENSION)
