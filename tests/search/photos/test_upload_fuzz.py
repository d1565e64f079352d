"""Mutated images through the whole upload path (store, then the worker's decode, encode and
thumbnails): each one is refused at upload with a reason, or ends ready, or failed with a
reason. Never pending, never processing, never an exception.

Which of the first two happens is asserted too: a file whose header does not name an accepted
format is refused at upload, with the allowlist in the message, and a file whose header is
sound is accepted and judged by the worker. Without that, a missing upload sniff (everything
accepted, then failed in the worker) would pass unnoticed.
"""

from __future__ import annotations

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings

from search.models import Embedding, Photo
from search.photos.services import PhotoRejected, photo_create
from tests.conftest import upload_file
from tests.pipeline import embed_waiting
from tests.workers.embedding.test_decode_fuzz import mutated_files, seeds
from workers.embedding.images import ACCEPTED_FORMATS_TEXT, ImageDecodeError, identify_format
from workers.embedding.video import ACCEPTED_VIDEO_FORMATS_TEXT

pytestmark = pytest.mark.django_db

EXAMPLES = max(30, int(os.environ.get("MEDIASEARCH_FUZZ_EXAMPLES", "300")) // 10)
# The engine's refusal names images; the upload's names videos too.
ENGINE_NOT_SUPPORTED = f"not a supported image (accepted: {ACCEPTED_FORMATS_TEXT})"
NOT_SUPPORTED = (
    f"not a supported image or video (images: {ACCEPTED_FORMATS_TEXT}; "
    f"videos: {ACCEPTED_VIDEO_FORMATS_TEXT})"
)
# What the header sniff can say; the worker's own reasons are about the pixel data.
UPLOAD_REASONS = ("the file is empty", NOT_SUPPORTED, "the image header is damaged",
                  "the image has no pixels", "the image is ")  # fmt: skip
WORKER_REASON = "the image data is damaged or incomplete ("
# Every way an accepted format can begin, written down without Pillow (generous on purpose:
# this only says which files can never be accepted).
SIGNATURES = (b"\xff\xd8", b"\x89PNG", b"GIF8", b"RIFF", b"II", b"MM", b"BM", b"P",
              b"\x00\x00\x00\x0cjP", b"\xff\x4f\xff\x51")  # fmt: skip


def has_an_image_signature(data: bytes) -> bool:
    return data.startswith(SIGNATURES) or data[4:8] == b"ftyp"  # HEIF, AVIF


def header_verdict(data: bytes) -> str | None:
    """Why the header alone refuses ``data``, or None when the header is sound."""
    try:
        identify_format(io.BytesIO(data))
    except ImageDecodeError as exc:
        return NOT_SUPPORTED if str(exc) == ENGINE_NOT_SUPPORTED else str(exc)
    return None


def upload_then_embed(owner, data: bytes) -> tuple[str, Photo | None]:
    """("refused", None) with the reason checked, or ("accepted", the photo after the worker)."""
    try:
        photo = photo_create(owner=owner, file=upload_file("fuzz.bin", data)).photo
    except PhotoRejected as exc:
        assert exc.reason.startswith(UPLOAD_REASONS), exc.reason
        return exc.reason, None
    embed_waiting()  # nothing, when the bytes were already uploaded by an earlier example
    photo.refresh_from_db()
    return "accepted", photo


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=EXAMPLES <= 30,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,  # one owner for every example is what we want
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=mutated_files())
def test_every_upload_ends_ready_or_failed_with_a_reason(alice, data):
    refused_for = header_verdict(data)
    outcome, photo = upload_then_embed(alice, data)
    if refused_for is not None:
        assert outcome == refused_for, "a file whose header is unreadable must be refused"
        if not has_an_image_signature(data) and data:
            assert outcome == NOT_SUPPORTED
        return
    assert outcome == "accepted", f"a sound header must be accepted, not refused: {outcome}"
    assert photo is not None and has_an_image_signature(data)
    assert photo.status in (Photo.Status.READY, Photo.Status.FAILED)
    if photo.status == Photo.Status.FAILED:
        # The worker's reason, about the data: never the upload's, never a crash.
        assert photo.failure_reason.startswith(WORKER_REASON), photo.failure_reason
        assert not Embedding.objects.filter(photo=photo).exists()
    else:
        assert photo.thumbnail and photo.preview and photo.failure_reason == ""


# WebP is left out: libwebp refuses a truncated file when it opens the header already.
TRUNCATABLE = sorted(name for name in seeds() if name != "WEBP")


@pytest.mark.parametrize("seed", TRUNCATABLE)
def test_an_image_truncated_past_its_header_is_accepted_then_fails_in_the_worker(alice, seed):
    data = seeds()[seed]
    outcome, photo = upload_then_embed(alice, data[: len(data) * 9 // 10])
    assert outcome == "accepted"
    assert photo is not None and photo.status == Photo.Status.FAILED
    assert photo.failure_reason.startswith(WORKER_REASON)
    assert not photo.thumbnail and not Embedding.objects.exists()


@pytest.mark.parametrize("seed", sorted(seeds()))
def test_an_image_whose_signature_is_gone_is_refused_at_upload(alice, seed):
    outcome, photo = upload_then_embed(alice, b"\x00" * 16 + seeds()[seed][16:])
    assert (outcome, photo) == (NOT_SUPPORTED, None)
    assert Photo.objects.count() == 0
