"""HTTP byte ranges (RFC 9110 §14) for served files, so that a video player can seek without
downloading the whole file. Django's ``FileResponse`` answers every request with the whole file,
so ``file_response`` turns a ``Range`` header into a 206 or a 416 itself. It reads the stored file
through ``search.photos.storage.stored_stream``: on S3 a ranged GET of just the bytes asked
for, streamed, rather than the storage API's download of the whole object."""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.core.files.storage import FileSystemStorage
from django.db.models.fields.files import FieldFile
from django.http import FileResponse, HttpRequest, HttpResponse, HttpResponseBase

from search.photos.storage import Readable, stored_stream

# One range: "bytes=first-last", "bytes=first-" or "bytes=-suffix" (the unit is case-insensitive).
SINGLE_RANGE = re.compile(r"bytes=(?:(\d+)-(\d*)|-(\d+))", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    start: int
    end: int  # inclusive, as in Content-Range

    @property
    def length(self) -> int:
        return self.end - self.start + 1


class RangeNotSatisfiable(Exception):
    """A well-formed range that starts at or past the end of the file: answered with 416."""


def requested_range(header: str, size: int) -> ByteRange | None:
    """The one range of ``size`` bytes that ``header`` asks for, or None where the whole file is
    to be sent: no header, a malformed one, or several ranges. Raises RangeNotSatisfiable."""
    match = SINGLE_RANGE.fullmatch(header.strip())
    # RFC 9110 §14.2 lets a server ignore Range. A malformed header is ignored rather than
    # refused, and so is a multi-range request ("bytes=0-1,5-9"): a 200 with the whole file is
    # a correct answer to it, and no player asks for several ranges at once.
    if match is None or size == 0:  # an empty file has no byte to point at
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        if int(suffix) == 0:
            raise RangeNotSatisfiable
        return ByteRange(start=max(size - int(suffix), 0), end=size - 1)
    start = int(first)
    if last and int(last) < start:  # "bytes=9-5" is invalid, not unsatisfiable (§14.1.1)
        return None
    if start >= size:
        raise RangeNotSatisfiable
    return ByteRange(start=start, end=min(int(last), size - 1) if last else size - 1)


class RangeReader:
    """At most ``length`` bytes of an open stored stream, read in the blocks the response asks
    for.

    It has no ``fileno``, so a WSGI server's sendfile cannot bypass it and send the whole
    file."""

    def __init__(self, stream: Readable, length: int) -> None:
        self.stream = stream
        self.remaining = length

    def read(self, size: int = -1) -> bytes:
        if self.remaining <= 0:
            return b""
        wanted = self.remaining if size < 0 else min(size, self.remaining)
        data = self.stream.read(wanted)
        self.remaining -= len(data)
        return data

    def close(self) -> None:
        self.stream.close()


def file_response(
    request: HttpRequest,
    field: FieldFile,
    *,
    content_type: str,
    filename: str,
    as_attachment: bool = False,
) -> HttpResponseBase:
    """The stored file as a 200 with every byte, a 206 with the range the request asks for,
    or a 416 for a range past its end; each says ``Accept-Ranges: bytes``."""
    size = field.size
    header = request.headers.get("Range", "")
    try:
        # We send no validator (ETag, Last-Modified), so an If-Range can never match: the
        # whole file is sent instead of a part of what may be another version (§13.1.5).
        byte_range = requested_range(header, size) if "If-Range" not in request.headers else None
    except RangeNotSatisfiable:
        response: HttpResponseBase = HttpResponse(status=416)
        response["Content-Range"] = f"bytes */{size}"
    else:
        if byte_range is None and isinstance(field.storage, FileSystemStorage):
            # A local file: FileResponse may hand it to the server's sendfile.
            response = FileResponse(
                field.open("rb"),
                content_type=content_type,
                as_attachment=as_attachment,
                filename=filename,
            )
        else:
            whole = byte_range is None
            sent = byte_range or ByteRange(start=0, end=size - 1)
            stream = (
                stored_stream(field)
                if whole
                else stored_stream(field, start=sent.start, end=sent.end)
            )
            response = FileResponse(
                RangeReader(stream, max(sent.length, 0)),
                status=200 if whole else 206,
                content_type=content_type,
                as_attachment=as_attachment,
                filename=filename,
            )
            response["Content-Length"] = str(max(sent.length, 0))
            if not whole:
                response["Content-Range"] = f"bytes {sent.start}-{sent.end}/{size}"
    response["Accept-Ranges"] = "bytes"
    return response
