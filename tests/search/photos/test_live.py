"""Live Photos and Android motion photos: one item, the still, with its motion playable."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from django.conf import settings
from django.db import connections
from django.urls import reverse

from search.ingest.motion import photo_motion_prepare
from search.models import Album, Embedding, Photo
from search.photos.services import photo_create, photos_create_many, photos_delete
from tests.conftest import upload_file
from tests.pipeline import embed_waiting
from workers.embedding.demo.live_fixtures import (
    live_motion_bytes,
    live_still_bytes,
    motion_photo_bytes,
)
from workers.embedding.demo.scenes import Scene
from workers.embedding.video import probe_video

ID = "9A1B2C3D-0000-4E5F-8899-AABBCCDDEEFF"
STAR = Scene("star", "red", 1, "large", "middle", "white", "plain")
CIRCLE = Scene("circle", "blue", 1, "large", "middle", "white", "plain")
CLIP = [(0.8, STAR), (0.8, CIRCLE)]


def still(name="IMG_0001.HEIC", identifier=ID, image_format="HEIF"):
    data = live_still_bytes(STAR, content_identifier=identifier, image_format=image_format)
    return upload_file(name, data, "image/heic" if image_format == "HEIF" else "image/jpeg")


def motion(name="IMG_0001.MOV", identifier=ID, codec="hevc"):
    data = live_motion_bytes(CLIP, content_identifier=identifier, codec=codec)
    return upload_file(name, data, "video/quicktime")


def embed_video(video: Photo):
    from search.ingest.services import photos_embed

    return photos_embed(photo_id=video.pk, batch_size=1, kind=Photo.Kind.VIDEO).get(video.pk)


@pytest.mark.django_db
def test_a_still_then_its_mov_become_one_live_photo_with_a_playable_motion(alice, client):
    first = photo_create(owner=alice, file=still())
    assert first.created and first.photo.content_identifier == ID

    second = photo_create(owner=alice, file=motion())

    assert (second.created, second.paired, second.photo.pk) == (False, True, first.photo.pk)
    assert Photo.objects.count() == 1
    live = Photo.objects.get()
    assert (live.kind, live.motion_status, live.motion_filename) == (
        "photo",
        "pending",
        "IMG_0001.MOV",
    )
    assert embed_waiting() == {live.pk: Photo.Status.READY}  # the still, like any photo
    assert photo_motion_prepare(photo_id=live.pk) == Photo.MotionStatus.READY
    assert photo_motion_prepare(photo_id=live.pk) is None  # safe to run twice

    live.refresh_from_db()
    assert live.motion_duration_ms == pytest.approx(1600, abs=150)
    with live.motion_playable.open("rb") as handle:  # iPhones record HEVC: Chromium needs H.264
        assert probe_video(handle, max_duration_s=60).codec == "h264"
    assert Embedding.objects.filter(photo=live).count() == 1
    client.force_login(alice)
    page = client.get(reverse("search:photo_detail", args=[live.pk])).content.decode()
    assert 'class="live-badge"' in page and reverse("search:photo_motion", args=[live.pk]) in page
    played = client.get(reverse("search:photo_motion", args=[live.pk]))
    assert (played.status_code, played["Content-Type"]) == (200, "video/mp4")
    original = client.get(reverse("search:photo_motion", args=[live.pk]), {"download": "1"})
    assert original["Content-Type"] == "video/quicktime"
    assert original["Content-Disposition"] == 'attachment; filename="IMG_0001.mov"'


@pytest.mark.django_db
def test_a_mov_uploaded_first_is_taken_over_by_its_still_days_later(
    alice, django_capture_on_commit_callbacks
):
    video = photo_create(owner=alice, file=motion(codec="h264")).photo
    assert (video.kind, video.content_identifier) == ("video", ID)
    assert embed_video(video) == Photo.Status.READY
    video.refresh_from_db()
    album = Album.objects.create(owner=alice, name="Trip")
    album.photos.add(video)
    mov_file, poster = video.file.name, video.thumbnail.name
    storage = video.file.storage

    with django_capture_on_commit_callbacks(execute=True):
        live = photo_create(owner=alice, file=still(image_format="JPEG")).photo

    assert list(Photo.objects.values_list("pk", flat=True)) == [live.pk]
    live.refresh_from_db()
    assert (live.motion.name, live.motion_status, live.motion_sha256) == (
        mov_file,
        "pending",
        video.sha256,
    )
    assert list(album.photos.all()) == [live]
    assert storage.exists(mov_file) and not storage.exists(poster)  # the video's poster went
    assert not Embedding.objects.filter(photo_id=video.pk).exists()
    assert photo_motion_prepare(photo_id=live.pk) == Photo.MotionStatus.READY
    live.refresh_from_db()
    assert not live.motion_playable  # an H.264 MOV plays as it is


@pytest.mark.django_db
def test_the_same_mov_again_is_a_duplicate_and_other_owners_do_not_pair(alice, bob):
    mine = photo_create(owner=alice, file=still()).photo
    photo_create(owner=alice, file=motion())
    again = photo_create(owner=alice, file=motion(name="copy.MOV"))
    theirs = photo_create(owner=bob, file=motion())

    assert (again.created, again.paired, again.photo.pk) == (False, False, mine.pk)
    assert theirs.created and theirs.photo.kind == "video"  # bob's MOV meets no still of his
    assert Photo.objects.filter(owner=alice).count() == 1


@pytest.mark.django_db
def test_deleting_a_live_photo_removes_its_motion_files(alice, django_capture_on_commit_callbacks):
    live = photo_create(owner=alice, file=still()).photo
    photo_create(owner=alice, file=motion())
    photo_motion_prepare(photo_id=live.pk)
    live.refresh_from_db()
    names = [live.motion.name, live.motion_playable.name]
    storage = live.motion.storage
    assert all(storage.exists(name) for name in names)

    with django_capture_on_commit_callbacks(execute=True):
        photos_delete(owner=alice, photo_ids=[live.pk])

    assert not any(storage.exists(name) for name in names)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("round_", range(3))
def test_both_halves_arriving_at_once_make_one_item(alice, round_):
    """Two uploads racing in two threads (two connections, as two web processes): one item,
    with the motion, never two items and never an orphaned MOV."""
    identifier = f"RACE-{round_:04d}-0000-0000-000000000000"
    files = [still(identifier=identifier), motion(identifier=identifier, codec="h264")]
    start = threading.Barrier(2)
    errors: list[BaseException] = []

    def upload(file):
        try:
            start.wait()
            photo_create(owner=alice, file=file)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=upload, args=(file,)) for file in files]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    rows = list(Photo.objects.filter(content_identifier=identifier).values_list("kind", "motion"))
    assert len(rows) == 1 and rows[0][0] == "photo" and rows[0][1], rows


@pytest.mark.django_db
@pytest.mark.parametrize("style", ["container", "microvideo"])
def test_an_android_motion_photo_keeps_its_still_and_extracts_its_mp4(alice, style):
    data = motion_photo_bytes(STAR, CLIP, style=style)
    photo = photo_create(owner=alice, file=upload_file("PXL_0001.MP.jpg", data)).photo
    assert (photo.kind, photo.image_format, photo.motion_status) == ("photo", "JPEG", "pending")

    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    assert photo_motion_prepare(photo_id=photo.pk) == Photo.MotionStatus.READY

    photo.refresh_from_db()
    assert photo.motion.name.startswith(f"motion/{alice.pk}/{photo.pk}/")
    with photo.motion.open("rb") as handle:
        info = probe_video(handle, max_duration_s=60)
    assert (info.codec, info.width, info.height) == ("h264", 320, 240)
    assert photo.motion_duration_ms == pytest.approx(1600, abs=150)
    assert not photo.motion_playable  # H.264 in MP4 plays as it is
    assert photo.motion_size_bytes == photo.motion.size


@pytest.mark.django_db
def test_a_motion_photo_whose_video_was_cut_off_fails_its_motion_alone(alice):
    data = motion_photo_bytes(STAR, CLIP)
    cut = data[: len(data) - 3000]  # an editor or a transfer dropped the end
    photo = photo_create(owner=alice, file=upload_file("PXL_0002.MP.jpg", cut)).photo
    fine = photo_create(owner=alice, file=still(name="IMG_0002.HEIC", identifier="OTHER-ID-0001"))

    assert photo_motion_prepare(photo_id=photo.pk) == Photo.MotionStatus.FAILED
    assert embed_waiting() == {photo.pk: Photo.Status.READY, fine.photo.pk: Photo.Status.READY}
    photo.refresh_from_db()
    assert photo.motion_failure_reason.startswith("the motion cannot be played: the embedded video")
    assert not photo.motion and not photo.motion_playable
    assert not (Path(settings.MEDIA_ROOT) / "motion").exists()  # nothing extracted was kept


@pytest.mark.django_db
def test_a_batch_reports_the_mov_as_paired_with_its_still(alice):
    report = photos_create_many(owner=alice, files=[still(), motion()])

    outcomes = [(item.filename, item.outcome) for item in report.items]
    assert outcomes == [("IMG_0001.HEIC", "created"), ("IMG_0001.MOV", "paired")]
    assert report.items[1].photo == report.items[0].photo
