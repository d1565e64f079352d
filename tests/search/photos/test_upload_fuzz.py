"""Mutated images through the whole upload path (store, then the worker's decode, encode and
thumbnails): each one is refused at upload with a reason, or ends ready, or failed with a
reason. Never pending, never processing, never an exception."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings

from search.models import Photo
from search.photos.services import PhotoRejected, photo_create
from tests.conftest import upload_file
from tests.pipeline import embed_waiting
from tests.workers.embedding.test_decode_fuzz import mutated_files

pytestmark = pytest.mark.django_db

EXAMPLES = max(30, int(os.environ.get("MEDIASEARCH_FUZZ_EXAMPLES", "300")) // 10)


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
    try:
        photo = photo_create(owner=alice, file=upload_file("fuzz.bin", data)).photo
    except PhotoRejected as exc:
        assert exc.reason
        return
    embed_waiting()  # nothing, when the bytes were already uploaded by an earlier example
    photo.refresh_from_db()
    assert photo.status in (Photo.Status.READY, Photo.Status.FAILED)
    if photo.status == Photo.Status.FAILED:
        assert photo.failure_reason
    else:
        assert photo.thumbnail and photo.preview
