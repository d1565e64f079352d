"""Uploads: storing, dedupe, refusals, the report."""

from __future__ import annotations

import pytest
import redis
from django.conf import settings

from search.models import Photo
from search.photos.services import PhotoRejected, display_filename, photo_create, photos_create_many
from tests.conftest import encode, make_image, upload_file

pytestmark = pytest.mark.django_db


def queued_messages() -> int:
    return redis.Redis.from_url(settings.REDIS_URL).llen("celery")


def test_create_stores_the_file_and_queues_the_photo_after_commit(
    alice, django_capture_on_commit_callbacks
):
    before = queued_messages()
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = photo_create(owner=alice, file=upload_file("beach.jpg", encode(make_image())))
    assert queued_messages() == before  # nothing is sent while the transaction is open

    for callback in callbacks:
        callback()

    photo = result.photo
    assert result.created
    assert (photo.status, photo.original_filename, photo.image_format) == (
        "pending",
        "beach.jpg",
        "JPEG",
    )
    assert photo.file.name.startswith(f"originals/{alice.pk}/") and "beach" not in photo.file.name
    assert queued_messages() == before + 1


def test_same_bytes_twice_give_back_the_existing_photo(alice):
    data = encode(make_image())
    first = photo_create(owner=alice, file=upload_file("a.jpg", data))
    second = photo_create(owner=alice, file=upload_file("copy of a.jpg", data))
    assert (second.created, second.photo.pk) == (False, first.photo.pk)
    assert Photo.objects.count() == 1


def test_same_bytes_for_two_owners_are_two_photos(alice, bob):
    data = encode(make_image())
    photo_create(owner=alice, file=upload_file("a.jpg", data))
    assert photo_create(owner=bob, file=upload_file("a.jpg", data)).created


def test_non_image_is_refused_by_name_and_nothing_is_stored(alice):
    with pytest.raises(PhotoRejected, match=r"^notes\.jpg: not a supported image"):
        photo_create(owner=alice, file=upload_file("notes.jpg", b"just some text"))
    assert Photo.objects.count() == 0


def test_one_bad_file_does_not_stop_the_others(alice):
    files = [
        upload_file("one.jpg", encode(make_image(color="red"))),
        upload_file("page.html", b"<html><body>hi</body></html>", "text/html"),
        upload_file("two.png", encode(make_image(color="blue"), "PNG"), "image/png"),
    ]
    report = photos_create_many(owner=alice, files=files)
    assert [photo.original_filename for photo in report.created] == ["one.jpg", "two.png"]
    assert report.rejected == [
        "page.html: not a supported image or video (images: JPEG, PNG, WebP, GIF, TIFF, BMP, "
        "HEIC/HEIF, AVIF, JPEG 2000, Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
        "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2; "
        "videos: MP4/MOV, MKV, WebM, AVI)"
    ]
    assert Photo.objects.count() == 2


def test_upload_report_gives_each_file_its_outcome_in_order(alice):
    data = encode(make_image(color="red"))
    existing = photo_create(owner=alice, file=upload_file("first.jpg", data)).photo
    files = [
        upload_file("dir/new.png", encode(make_image(color="blue"), "PNG"), "image/png"),
        upload_file("notes.txt", b"hello", "text/plain"),
        upload_file("copy.jpg", data),
    ]

    report = photos_create_many(owner=alice, files=files)

    new = Photo.objects.get(original_filename="new.png")
    assert [(i.filename, i.outcome, i.photo, i.reason) for i in report.items] == [
        ("new.png", "created", new, ""),
        ("notes.txt", "rejected", None, report.rejected[0].removeprefix("notes.txt: ")),
        ("copy.jpg", "duplicate", existing, ""),
    ]


def test_file_names_are_kept_as_data_only():
    assert display_filename("../../etc/passwd") == "passwd"
    assert display_filename("C:\\Users\\me\\фото 1.jpg") == "фото 1.jpg"
    assert display_filename("bad\x00name\n.jpg") == "badname.jpg"
    assert display_filename("x" * 1000 + ".jpg") == "x" * 251 + ".jpg"
