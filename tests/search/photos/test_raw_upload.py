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


def test_a_raw_and_the_jpeg_shot_with_it_are_grouped_as_duplicates(alice):
    """RAW+JPEG from one shot: two items, in one group on the duplicates page at the default
    distance (docs/RAW.md says why), and a different shot in none."""
    from django.conf import settings

    from search.duplicates.selectors import near_duplicate_groups
    from search.duplicates.services import near_duplicate_pairs_find
    from tests.conftest import encode
    from workers.active_engine import get_engine

    shot = render(Scene("cross", "green", 1, "large", "left", "white", "plain"), (256, 192))
    other = render(Scene("circle", "yellow", 2, "small", None, "black", "dotted"), (256, 192))
    raw = photo_create(owner=alice, file=upload_file("DSC_0042.DNG", dng_bytes(shot))).photo
    jpeg = photo_create(owner=alice, file=upload_file("DSC_0042.JPG", encode(shot))).photo
    photo_create(owner=alice, file=upload_file("DSC_0043.JPG", encode(other)))
    embed_waiting()
    model_id = get_engine().model_id
    near_duplicate_pairs_find(photo_ids=list(Photo.objects.values_list("pk", flat=True)),
                              model_id=model_id)  # fmt: skip

    page = near_duplicate_groups(
        user=alice, model_id=model_id, max_distance=settings.MEDIASEARCH_DUPLICATE_DISTANCE
    )

    assert [sorted(item.photo.pk for item in group.photos) for group in page.groups] == [
        sorted([raw.pk, jpeg.pk])
    ]
