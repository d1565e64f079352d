"""Serving a photo's files (original, thumbnail, preview) to someone who may see it: the
web pages and the JSON API both answer through ``photo_file_response``."""

from __future__ import annotations

from django.conf import settings
from django.http import FileResponse, Http404

from search.models import Photo

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}


def photo_file_response(*, photo: Photo, kind: str, download: bool = False) -> FileResponse:
    """Stream the original, thumbnail or preview of a photo the caller may see (the web pages
    and the JSON API both serve files through this). Raises Http404 for a derived file that
    the worker has not made yet."""
    if kind in ("thumbnail", "preview"):
        derived = photo.thumbnail if kind == "thumbnail" else photo.preview
        if not derived:
            raise Http404(f"The {kind} is not made yet.")
        stem = photo.original_filename.rsplit(".", 1)[0]
        response = FileResponse(
            derived.open("rb"), content_type="image/jpeg", filename=f"{stem}-{kind}.jpg"
        )
    else:
        content_type = CONTENT_TYPES.get(photo.image_format, "application/octet-stream")
        response = FileResponse(
            photo.file.open("rb"),
            content_type=content_type,
            # A format outside the allowlist is never shown inline, only downloaded.
            as_attachment=download or content_type == "application/octet-stream",
            filename=photo.original_filename,
        )
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = settings.MEDIASEARCH_CSP_FILES
    return response
