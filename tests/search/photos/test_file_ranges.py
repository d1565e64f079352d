"""Byte ranges on served files (originals, thumbnails, previews), through the web views and the
JSON API, so that a player can seek: 206 with the exact bytes, 416 past the end, the whole file
for what is not one well-formed range, and the same refusals as without a Range header."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.http import FileResponse
from django.urls import reverse
from PIL import Image

from search.models import Photo
from search.photos.ranges import ByteRange, RangeNotSatisfiable, requested_range
from search.photos.services import photo_create
from tests.conftest import BOTH_STORAGES, encode, upload_file
from tests.pipeline import embed_waiting

pytestmark = pytest.mark.django_db

KINDS = ("original", "thumbnail", "preview")


@pytest.fixture
def photo(storage_backend, alice) -> Photo:
    """A ready photo whose original (noise, as PNG) is many read blocks long, stored where
    ``storage_backend`` says (local files unless a test asks for both)."""
    noise = Image.effect_noise((320, 240), 64).convert("RGB")
    created = photo_create(owner=alice, file=upload_file("clip.png", encode(noise, "PNG"))).photo
    assert embed_waiting() == {created.pk: Photo.Status.READY}
    created.refresh_from_db()
    return created


def stored_bytes(photo: Photo, kind: str) -> bytes:
    field = {"original": photo.file, "thumbnail": photo.thumbnail, "preview": photo.preview}[kind]
    with field.open("rb") as file:
        return file.read()


def web_url(photo: Photo, kind: str) -> str:
    return reverse(f"search:photo_{kind}", args=[photo.pk])


def api_url(photo: Photo, kind: str) -> str:
    return f"/api/photos/{photo.pk}/{kind}"


def body(response) -> bytes:
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("kind", KINDS)
@BOTH_STORAGES
def test_a_closed_range_is_206_with_exactly_those_bytes(alice_client, photo, kind):
    data = stored_bytes(photo, kind)

    response = alice_client.get(web_url(photo, kind), headers={"Range": "bytes=0-99"})

    assert response.status_code == 206
    assert body(response) == data[:100]
    assert response["Content-Range"] == f"bytes 0-99/{len(data)}"
    assert response["Content-Length"] == "100"
    assert response["Accept-Ranges"] == "bytes"
    # The headers of the whole file are kept on a part of it.
    whole = alice_client.get(web_url(photo, kind))
    for header in ("Content-Type", "Content-Disposition", "Cache-Control"):
        assert response[header] == whole[header], header
    assert response["Cache-Control"] == "private, max-age=3600"
    assert response["Content-Security-Policy"] == settings.MEDIASEARCH_CSP_FILES


@pytest.mark.parametrize("kind", KINDS)
def test_an_open_ended_range_runs_to_the_end(alice_client, photo, kind):
    data = stored_bytes(photo, kind)

    response = alice_client.get(web_url(photo, kind), headers={"Range": "bytes=100-"})

    assert response.status_code == 206
    assert body(response) == data[100:]
    assert response["Content-Range"] == f"bytes 100-{len(data) - 1}/{len(data)}"
    assert response["Content-Length"] == str(len(data) - 100)


@pytest.mark.parametrize("kind", KINDS)
@BOTH_STORAGES
def test_a_suffix_range_is_the_last_bytes(alice_client, photo, kind):
    data = stored_bytes(photo, kind)

    response = alice_client.get(web_url(photo, kind), headers={"Range": "bytes=-50"})

    assert response.status_code == 206
    assert body(response) == data[-50:]
    assert response["Content-Range"] == f"bytes {len(data) - 50}-{len(data) - 1}/{len(data)}"


def test_a_range_past_the_end_is_cut_at_the_end(alice_client, photo):
    data = stored_bytes(photo, "original")

    response = alice_client.get(
        web_url(photo, "original"), headers={"Range": f"bytes={len(data) - 10}-{len(data) * 9}"}
    )

    assert response.status_code == 206
    assert body(response) == data[-10:]
    assert response["Content-Range"] == f"bytes {len(data) - 10}-{len(data) - 1}/{len(data)}"


@pytest.mark.parametrize("kind", KINDS)
@BOTH_STORAGES
def test_a_range_starting_past_the_end_is_416_with_the_size(alice_client, photo, kind):
    size = len(stored_bytes(photo, kind))

    for header in (f"bytes={size}-", f"bytes={size + 5}-{size + 9}", "bytes=-0"):
        response = alice_client.get(web_url(photo, kind), headers={"Range": header})

        assert response.status_code == 416, header
        assert response["Content-Range"] == f"bytes */{size}"
        assert response["Cache-Control"] == "private, max-age=3600"


@pytest.mark.parametrize(
    "header",
    [
        "bytes=abc",
        "bytes=9-5",  # last before first: invalid, not unsatisfiable
        "bytes=",
        "bytes=-",
        "items=0-9",
        "0-9",
        "bytes=0-1,5-9",  # several ranges are answered whole (RFC 9110 §14.2 allows it)
        "bytes=0-99; bytes=5-9",
    ],
)
def test_what_is_not_one_well_formed_range_gets_the_whole_file(alice_client, photo, header):
    data = stored_bytes(photo, "original")

    response = alice_client.get(web_url(photo, "original"), headers={"Range": header})

    assert response.status_code == 200
    assert body(response) == data
    assert "Content-Range" not in response
    assert response["Accept-Ranges"] == "bytes"


def test_if_range_gets_the_whole_file_as_no_validator_is_sent(alice_client, photo):
    data = stored_bytes(photo, "original")

    response = alice_client.get(
        web_url(photo, "original"),
        headers={"Range": "bytes=0-99", "If-Range": '"an-etag-we-never-sent"'},
    )

    assert (response.status_code, response["Accept-Ranges"]) == (200, "bytes")
    assert "ETag" not in response and "Last-Modified" not in response
    assert body(response) == data


@BOTH_STORAGES
def test_a_range_is_streamed_in_blocks_not_read_at_once(alice_client, photo):
    data = stored_bytes(photo, "original")
    assert len(data) > 10 * FileResponse.block_size

    response = alice_client.get(web_url(photo, "original"), headers={"Range": "bytes=10-"})

    blocks = list(response.streaming_content)
    assert response.status_code == 206
    assert max(len(block) for block in blocks) <= FileResponse.block_size
    assert b"".join(blocks) == data[10:]


@pytest.mark.parametrize("kind", KINDS)
@BOTH_STORAGES
def test_head_gives_the_headers_of_the_whole_file_or_of_the_range(alice_client, photo, kind):
    size = len(stored_bytes(photo, kind))

    whole = alice_client.head(web_url(photo, kind))
    part = alice_client.head(web_url(photo, kind), headers={"Range": "bytes=0-99"})

    assert (whole.status_code, whole["Content-Length"], whole["Accept-Ranges"]) == (
        200,
        str(size),
        "bytes",
    )
    assert (part.status_code, part["Content-Length"], part["Content-Range"]) == (
        206,
        "100",
        f"bytes 0-99/{size}",
    )
    assert body(whole) == body(part) == b""


@pytest.mark.parametrize("kind", KINDS)
def test_a_range_opens_no_photo_its_asker_may_not_see(client, alice, bob, photo, kind):
    client.force_login(alice)
    assert client.get(web_url(photo, kind), headers={"Range": "bytes=0-9"}).status_code == 206
    client.force_login(bob)

    plain = client.get(web_url(photo, kind))
    ranged = client.get(web_url(photo, kind), headers={"Range": "bytes=0-9"})
    head = client.head(web_url(photo, kind), headers={"Range": "bytes=0-9"})

    assert plain.status_code == ranged.status_code == head.status_code == 404
    assert ranged.content == plain.content
    assert "Content-Range" not in ranged


def test_a_range_needs_a_login_as_the_whole_file_does(client, alice, photo):
    client.force_login(alice)
    assert client.get(web_url(photo, "original"), headers={"Range": "bytes=0-9"}).status_code == 206
    client.logout()

    plain = client.get(web_url(photo, "original"))
    ranged = client.get(web_url(photo, "original"), headers={"Range": "bytes=0-9"})

    assert (ranged.status_code, ranged["Location"]) == (302, plain["Location"])
    assert "Accept-Ranges" not in ranged


# The JSON API serves the same files the same way.


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_answers_ranges(api, photo, alice_token, kind):
    data = stored_bytes(photo, kind)
    for header, status, part, content_range in [
        ("bytes=0-99", 206, data[:100], f"bytes 0-99/{len(data)}"),
        ("bytes=100-", 206, data[100:], f"bytes 100-{len(data) - 1}/{len(data)}"),
        ("bytes=-50", 206, data[-50:], f"bytes {len(data) - 50}-{len(data) - 1}/{len(data)}"),
        ("bytes=0-1,5-9", 200, data, None),
        ("bytes=oops", 200, data, None),
    ]:
        response = api.get(api_url(photo, kind), token=alice_token, headers={"Range": header})

        assert response.status_code == status, header
        assert body(response) == part, header
        assert response.get("Content-Range") == content_range, header
        assert response["Accept-Ranges"] == "bytes"


def test_the_api_answers_a_range_past_the_end_with_json_and_the_size(api, photo, alice_token):
    size = len(stored_bytes(photo, "original"))

    response = api.get(
        api_url(photo, "original"), token=alice_token, headers={"Range": f"bytes={size}-"}
    )

    assert response.status_code == 416
    assert response.json() == {"detail": "Requested Range Not Satisfiable."}
    assert response["Content-Range"] == f"bytes */{size}"


def test_the_api_answers_head(client, photo, alice_token):
    size = len(stored_bytes(photo, "original"))
    token = {"Authorization": f"Bearer {alice_token}"}

    whole = client.head(api_url(photo, "original"), headers=token)
    part = client.head(api_url(photo, "original"), headers={**token, "Range": "bytes=0-99"})
    anonymous = client.head(api_url(photo, "original"), headers={"Range": "bytes=0-99"})

    assert (whole.status_code, whole["Content-Length"], whole["Accept-Ranges"]) == (
        200,
        str(size),
        "bytes",
    )
    assert (part.status_code, part["Content-Range"]) == (206, f"bytes 0-99/{size}")
    assert anonymous.status_code == 401


@pytest.mark.parametrize("kind", KINDS)
def test_the_api_opens_no_range_of_another_users_photo(api, photo, alice_token, bob_token, kind):
    ranged = {"Range": "bytes=0-9"}
    assert api.get(api_url(photo, kind), token=alice_token, headers=ranged).status_code == 206

    plain = api.get(api_url(photo, kind), token=bob_token)
    refused = api.get(api_url(photo, kind), token=bob_token, headers=ranged)

    assert (refused.status_code, refused.json()) == (plain.status_code, plain.json())
    assert refused.status_code == 404
    assert "Content-Range" not in refused


# The parsing alone, for the edges the pages do not reach.


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 0)),
        ("BYTES=2-4", 10, ByteRange(2, 4)),
        (" bytes=2-4 ", 10, ByteRange(2, 4)),
        ("bytes=-50", 10, ByteRange(0, 9)),  # a suffix longer than the file is all of it
        ("bytes=9-", 10, ByteRange(9, 9)),
        ("bytes=0-99", 0, None),  # an empty file is always sent whole
        ("bytes=1 2-", 10, None),
        ("bytes=+1-2", 10, None),
        ("", 10, None),
    ],
)
def test_requested_range(header, size, expected):
    assert requested_range(header, size) == expected


@pytest.mark.parametrize("header", ["bytes=10-", "bytes=10-20", "bytes=-0"])
def test_requested_range_past_the_end_is_not_satisfiable(header):
    with pytest.raises(RangeNotSatisfiable):
        requested_range(header, 10)
