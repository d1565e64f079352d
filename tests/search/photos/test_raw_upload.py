"""A camera RAW through the upload path: accepted, embedded, served under its own extension."""

from __future__ import annotations

import io

import pytest
from django.urls import reverse
from PIL import Image

from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import upload_file
from tests.pipeline import embed_waiting
from workers.embedding.demo.raw_fixtures import dng_bytes
from workers.embedding.demo.scenes import Scene, render

pytestmark = pytest.mark.django_db


def test_a_dng_upload_is_embedded_with_thumbnail_preview_and_metadata(client, alice):
    picture = render(Scene("star", "red", 1, "large", "middle", "blue", "plain"), (256, 192))
    photo = photo_create(
        owner=alice, file=upload_file("IMG_0001.DNG", dng_bytes(picture), "image/x-adobe-dng")
    ).photo
    assert photo.image_format == "DNG"

    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    photo.refresh_from_db()
    assert (photo.width, photo.height) == (256, 192)
    assert (photo.camera_make, photo.camera_model) == ("MediaSearch", "Demo Camera DNG")
    assert photo.taken_at is not None and photo.taken_at_offset_minutes == 120
    for derived in (photo.thumbnail, photo.preview):
        with derived.open("rb") as handle:
            assert Image.open(io.BytesIO(handle.read())).format == "JPEG"
    client.force_login(alice)
    response = client.get(reverse("search:photo_original", args=[photo.pk]), {"download": "1"})
    assert response["Content-Type"] == "image/x-adobe-dng"
    assert response["Content-Disposition"] == 'attachment; filename="IMG_0001.dng"'
