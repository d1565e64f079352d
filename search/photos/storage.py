"""What the file store's outages look like, and reading part of a stored file.

With ``MEDIASEARCH_STORAGE=s3`` every file lives in an object store reached over HTTP: when it
does not answer, botocore raises its own errors, which are not ``OSError``. Those are the
outages an upload refuses with a reason, a worker retries, and a served file answers with 503.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Protocol

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as ObjectStoreConnectionError
from django.db.models.fields.files import FieldFile
from storages.backends.s3 import S3Storage
from storages.utils import clean_name


class ObjectStoreUnavailable(Exception):
    """The object store answered, but with a server error (500, 503, "slow down") after
    botocore's own retries: it is there but not serving, as SeaweedFS is for a moment after a
    restart, before its volumes have joined."""


# The object store could not be reached, the connection broke mid-request, or it answered
# with a server error (botocore has already retried: MEDIASEARCH_S3_MAX_ATTEMPTS). A 4xx answer
# (a missing key, a refused signature) is not among them: retrying would only repeat it.
OBJECT_STORE_OUTAGES: tuple[type[BaseException], ...] = (
    ObjectStoreConnectionError,
    HTTPClientError,
    ObjectStoreUnavailable,
)
# Every failure to reach the stored files: a local disk's errors too (a full disk, an unmounted
# volume).
STORAGE_OUTAGES: tuple[type[BaseException], ...] = (OSError, *OBJECT_STORE_OUTAGES)


def is_object_store_outage(exc: BaseException) -> bool:
    """Whether ``exc`` says the object store is down rather than that a request was wrong."""
    if isinstance(exc, OBJECT_STORE_OUTAGES):
        return True
    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        return status >= 500 or exc.response.get("Error", {}).get("Code") == "SlowDown"
    return False


@contextmanager
def object_store_outages_raised() -> Iterator[None]:
    """Raise a server error of the object store as ``ObjectStoreUnavailable`` (one of
    ``OBJECT_STORE_OUTAGES``), so that the callers' ``except`` clauses that retry outages see
    it; botocore raises every answer it does not like as ``ClientError``."""
    try:
        yield
    except ClientError as exc:
        if is_object_store_outage(exc):
            raise ObjectStoreUnavailable(str(exc)) from exc
        raise


class Readable(Protocol):
    def read(self, size: int = -1, /) -> bytes: ...

    def close(self) -> None: ...


def stored_stream(field: FieldFile, *, start: int = 0, end: int | None = None) -> Readable:
    """The stored file's bytes from ``start`` to ``end`` (inclusive; None: to its end), ready
    to be read in blocks.

    On S3 this is one GET of just those bytes, streamed as it is read: the storage API's
    ``open`` downloads the whole object first, which a video player's seek into a 4 GB film
    cannot wait for. Elsewhere the file is opened and positioned. Raises ``FileNotFoundError``
    for a file that is not there, and the store's outages (``STORAGE_OUTAGES``)."""
    storage, name = field.storage, field.name or ""
    if isinstance(storage, S3Storage):
        request = {"Bucket": storage.bucket_name, "Key": storage._normalize_name(clean_name(name))}
        if start or end is not None:
            request["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            return storage.connection.meta.client.get_object(**request)["Body"]
        except ClientError as exc:
            if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                raise FileNotFoundError(f"no stored file {name}") from None
            raise
    handle = storage.open(name, "rb")
    handle.seek(start)
    return handle
