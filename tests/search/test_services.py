import numpy as np
import pytest
import redis
from django.conf import settings

from search.models import Embedding, Photo
from search.services import (
    PhotoRejected,
    display_filename,
    photo_create,
    photo_embed,
    photos_create_many,
    photos_requeue_stalled,
)
from tests.conftest import encode, make_image, upload_file
from workers.embedding.active import get_engine
from workers.embedding.images import decode_image

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
        "page.html: not a supported image (accepted: JPEG, PNG, WebP, GIF, TIFF, BMP, "
        "HEIC/HEIF, AVIF, JPEG 2000, Netpbm PNM/PBM/PGM/PPM)"
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


def test_embed_writes_the_engine_vector_and_thumbnail(alice):
    image = make_image(color="green", shape="square")
    photo = photo_create(owner=alice, file=upload_file("g.jpg", encode(image))).photo

    assert photo_embed(photo_id=photo.pk) == Photo.Status.READY

    photo.refresh_from_db()
    engine = get_engine()
    stored = Embedding.objects.get(photo=photo)
    expected = engine.encode_images([decode_image(encode(image))])[0]
    assert (photo.status, photo.width, photo.height, photo.attempts) == ("ready", 320, 240, 1)
    assert photo.thumbnail.name.startswith(f"thumbnails/{alice.pk}/")
    assert stored.model_id == engine.model_id
    np.testing.assert_allclose(np.asarray(stored.vector), expected, atol=1e-5)


def test_embedding_twice_changes_nothing(alice):
    photo = photo_create(owner=alice, file=upload_file("g.jpg", encode(make_image()))).photo
    photo_embed(photo_id=photo.pk)
    before = Photo.objects.values().get(pk=photo.pk)

    assert photo_embed(photo_id=photo.pk) is None

    assert Photo.objects.values().get(pk=photo.pk) == before
    assert Embedding.objects.filter(photo=photo).count() == 1


def test_damaged_file_is_marked_failed_with_a_reason_and_others_are_untouched(alice):
    data = encode(make_image(size=(300, 300)), quality=95)
    broken = photo_create(owner=alice, file=upload_file("cut.jpg", data[: len(data) // 2])).photo
    good = photo_create(owner=alice, file=upload_file("ok.jpg", encode(make_image()))).photo

    assert photo_embed(photo_id=broken.pk) == Photo.Status.FAILED
    photo_embed(photo_id=good.pk)

    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.failure_reason.startswith("the image data is damaged or incomplete")
    assert not Embedding.objects.filter(photo=broken).exists()
    assert Photo.objects.get(pk=good.pk).status == "ready"


def test_sweeper_requeues_stalled_photos_only(alice, settings):
    settings.MEDIASEARCH_PENDING_REQUEUE_AFTER = 0
    settings.MEDIASEARCH_PROCESSING_TIMEOUT = 60
    stalled = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    busy = photo_create(owner=alice, file=upload_file("b.png", encode(make_image(), "PNG"))).photo
    Photo.objects.filter(pk=busy.pk).update(
        status="processing", processing_started_at=busy.created_at
    )
    from django.utils import timezone

    Photo.objects.filter(pk=busy.pk).update(processing_started_at=timezone.now())

    assert photos_requeue_stalled() == [stalled.pk]
    assert Photo.objects.get(pk=busy.pk).status == "processing"


def test_a_photo_that_keeps_crashing_its_worker_ends_failed_not_retried_forever(alice, settings):
    from datetime import timedelta

    from django.utils import timezone

    settings.MEDIASEARCH_PROCESSING_TIMEOUT = 60
    settings.MEDIASEARCH_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(minutes=5)
    worn, retried = (
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(size=(64 + i, 64)), "PNG"))
        ).photo
        for i in range(2)
    )
    Photo.objects.filter(pk=worn.pk).update(
        status="processing", processing_started_at=long_ago, attempts=3
    )
    Photo.objects.filter(pk=retried.pk).update(
        status="processing", processing_started_at=long_ago, attempts=2
    )

    assert photo_embed(photo_id=worn.pk) is None  # its attempts are used up: never claimed
    assert photos_requeue_stalled() == [retried.pk]

    worn.refresh_from_db()
    assert worn.status == "failed"
    assert worn.attempts == 3
    assert worn.failure_reason.startswith("gave up after 3 attempts that did not finish")
    assert Photo.objects.get(pk=retried.pk).status == "pending"
    assert not Embedding.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_batch_embeds_waiting_photos_together_and_skips_locked_ones(alice):
    import psycopg

    from search.services import photos_embed
    from tests.conftest import test_database_url

    photos = [
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(size=(64 + i, 64)), "PNG"))
        ).photo
        for i in range(5)
    ]
    with psycopg.connect(test_database_url()) as other:
        # Another worker's claim transaction holds photo 4.
        other.execute("SELECT id FROM search_photo WHERE id = %s FOR UPDATE", [photos[4].pk])

        statuses = photos_embed(photo_id=photos[2].pk, batch_size=10)

        other.rollback()

    assert statuses == {photo.pk: "ready" for photo in photos[:4]}
    assert Photo.objects.get(pk=photos[4].pk).status == "pending"
    assert Embedding.objects.filter(photo__in=photos[:4]).count() == 4
    assert Photo.objects.get(pk=photos[2].pk).attempts == 1


def test_a_duplicate_message_claims_nothing(alice):
    from search.services import photos_embed

    done = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    waiting = photo_create(
        owner=alice, file=upload_file("b.png", encode(make_image(), "PNG"))
    ).photo
    photos_embed(photo_id=done.pk, batch_size=1)

    assert photos_embed(photo_id=done.pk, batch_size=10) == {}
    assert Photo.objects.get(pk=waiting.pk).status == "pending"


def test_one_damaged_file_in_a_batch_fails_alone(alice):
    from search.services import photos_embed

    data = encode(make_image(size=(300, 300)), quality=95)
    good = [
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(size=(60 + i, 60)), "PNG"))
        ).photo
        for i in range(3)
    ]
    broken = photo_create(owner=alice, file=upload_file("cut.jpg", data[: len(data) // 2])).photo

    statuses = photos_embed(photo_id=good[0].pk, batch_size=10)

    assert statuses == {**{p.pk: "ready" for p in good}, broken.pk: "failed"}
    assert Photo.objects.get(pk=broken.pk).failure_reason.startswith("the image data is damaged")


def test_a_task_out_of_retries_leaves_the_photo_pending_for_the_sweeper(alice):
    import os

    from workers.tasks import MAX_RETRIES, embed_photo

    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    # A storage I/O error (not bad image data): the original's path is now a folder.
    os.remove(photo.file.path)
    os.mkdir(photo.file.path)

    result = embed_photo.apply(args=(photo.pk,), retries=MAX_RETRIES)

    assert result.get() is None
    photo.refresh_from_db()
    assert (photo.status, photo.attempts, photo.failure_reason) == ("pending", 1, "")


def test_a_failed_database_write_leaves_no_thumbnails_or_previews_behind(alice, settings):
    from pathlib import Path

    from django.db import DatabaseError, connection

    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    with connection.cursor() as cursor:
        # A real failure inside the write transaction, as a full disk would give.
        cursor.execute(
            "CREATE FUNCTION refuse_ready() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device'; END $$ "
            "LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_ready BEFORE UPDATE ON search_photo FOR EACH ROW "
            "WHEN (NEW.status = 'ready') EXECUTE FUNCTION refuse_ready()"
        )

    with pytest.raises(DatabaseError, match="No space left on device"):
        photo_embed(photo_id=photo.pk)

    stored = sorted(
        str(p.relative_to(settings.MEDIA_ROOT))
        for p in Path(settings.MEDIA_ROOT).rglob("*")
        if p.is_file()
    )
    assert stored == [photo.file.name]
    photo.refresh_from_db()
    assert (photo.status, photo.thumbnail.name, photo.preview.name) == ("pending", "", "")
    assert not Embedding.objects.exists()
