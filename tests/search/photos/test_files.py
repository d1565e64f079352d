"""Serving originals: the name and type a download gets come from the bytes, not the upload."""

from __future__ import annotations

import pytest
from django.urls import reverse

from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("uploaded_as", "data_format", "downloaded_as", "content_type"),
    [
        ("x.html", "JPEG", "x.jpg", "image/jpeg"),
        ("holiday.PNG.exe", "PNG", "holiday.PNG.png", "image/png"),
        ("scan", "PPM", "scan.pnm", "image/x-portable-anymap"),
        ("photo.jpeg", "JPEG", "photo.jpg", "image/jpeg"),
    ],
)
def test_a_download_is_named_and_typed_by_the_format_of_its_bytes(
    client, alice, uploaded_as, data_format, downloaded_as, content_type
):
    photo = photo_create(
        owner=alice, file=upload_file(uploaded_as, encode(make_image(), data_format))
    ).photo
    client.force_login(alice)

    response = client.get(reverse("search:photo_original", args=[photo.pk]), {"download": "1"})

    assert response.status_code == 200
    assert response["Content-Type"] == content_type
    assert response["Content-Disposition"] == f'attachment; filename="{downloaded_as}"'
    assert photo.original_filename == uploaded_as  # the name the user gave is kept as data


def test_a_file_outside_the_allowlist_downloads_as_bytes(client, alice):
    photo = photo_create(owner=alice, file=upload_file("x.svg", encode(make_image()))).photo
    Photo.objects.filter(pk=photo.pk).update(image_format="SVG")
    client.force_login(alice)

    response = client.get(reverse("search:photo_original", args=[photo.pk]))

    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"] == 'attachment; filename="x.bin"'
