"""The ingest pipeline: claiming, embedding batches, failing, releasing, sweeping."""

from __future__ import annotations

import uuid
from datetime import timedelta

import numpy as np
import pytest
from django.utils import timezone

from search.ingest.services import photos_embed, photos_requeue_stalled
from search.models import Embedding, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers import task_names
from workers.active_engine import get_engine
from workers.embedding.images import decode_image

pytestmark = pytest.mark.django_db


def test_embed_writes_the_engine_vector_and_thumbnail(alice):
    image = make_image(color="green", shape="square")
    photo = photo_create(owner=alice, file=upload_file("g.jpg", encode(image))).photo

    assert embed_waiting() == {photo.pk: Photo.Status.READY}

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
    embed_waiting()
    before = Photo.objects.values().get(pk=photo.pk)

    assert photos_embed(photo_id=photo.pk, batch_size=8) == {}  # its message, again

    assert Photo.objects.values().get(pk=photo.pk) == before
    assert Embedding.objects.filter(photo=photo).count() == 1


def test_damaged_file_is_marked_failed_with_a_reason_and_others_are_untouched(alice):
    data = encode(make_image(size=(300, 300)), quality=95)
    broken = photo_create(owner=alice, file=upload_file("cut.jpg", data[: len(data) // 2])).photo
    good = photo_create(owner=alice, file=upload_file("ok.jpg", encode(make_image()))).photo

    assert embed_waiting() == {broken.pk: Photo.Status.FAILED, good.pk: Photo.Status.READY}

    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.failure_reason.startswith("the image data is damaged or incomplete")
    assert not Embedding.objects.filter(photo=broken).exists()
    assert Photo.objects.get(pk=good.pk).status == "ready"


def test_sweeper_resends_stalled_photos_only(
    alice, settings, queued, django_capture_on_commit_callbacks
):
    settings.MEDIASEARCH_PENDING_REQUEUE_AFTER = 0
    stalled, busy, dead = (
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(size=(60 + i, 60)), "PNG"))
        ).photo
        for i in range(3)
    )
    now = timezone.now()
    Photo.objects.filter(pk=busy.pk).update(
        status="processing", claim_token=uuid.uuid4(), lease_expires_at=now + timedelta(seconds=30)
    )
    Photo.objects.filter(pk=dead.pk).update(
        status="processing", claim_token=uuid.uuid4(), lease_expires_at=now - timedelta(seconds=1)
    )
    with django_capture_on_commit_callbacks(execute=True):
        resent = photos_requeue_stalled()

    assert sorted(resent) == sorted([stalled.pk, dead.pk])
    assert sorted(queued()) == sorted(
        [(task_names.EMBED_PHOTO, [stalled.pk]), (task_names.EMBED_PHOTO, [dead.pk])]
    )
    assert Photo.objects.get(pk=busy.pk).status == "processing"  # its worker keeps it
    assert Photo.objects.get(pk=dead.pk).status == "pending"


def test_a_photo_that_keeps_crashing_its_worker_ends_failed_not_retried_forever(alice, settings):
    settings.MEDIASEARCH_MAX_ATTEMPTS = 3
    long_ago = timezone.now() - timedelta(minutes=5)
    worn, retried = (
        photo_create(
            owner=alice, file=upload_file(f"{i}.png", encode(make_image(size=(64 + i, 64)), "PNG"))
        ).photo
        for i in range(2)
    )
    Photo.objects.filter(pk=worn.pk).update(
        status="processing", lease_expires_at=long_ago, attempts=3
    )
    Photo.objects.filter(pk=retried.pk).update(
        status="processing", lease_expires_at=long_ago, attempts=2
    )

    assert (
        photos_embed(photo_id=worn.pk, batch_size=8) == {}
    )  # its attempts are used up: never claimed
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

    from search.ingest.services import photos_embed
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
    from search.ingest.services import photos_embed

    done = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    waiting = photo_create(
        owner=alice, file=upload_file("b.png", encode(make_image(), "PNG"))
    ).photo
    photos_embed(photo_id=done.pk, batch_size=1)

    assert photos_embed(photo_id=done.pk, batch_size=10) == {}
    assert Photo.objects.get(pk=waiting.pk).status == "pending"


def test_one_damaged_file_in_a_batch_fails_alone(alice):
    from search.ingest.services import photos_embed

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

    from django.db import OperationalError, connection

    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    with connection.cursor() as cursor:
        # A real failure inside the write transaction, as a full disk would give.
        cursor.execute(
            "CREATE FUNCTION refuse_ready() RETURNS trigger AS $$ BEGIN "
            "RAISE EXCEPTION 'could not extend file: No space left on device' "
            "USING ERRCODE = 'disk_full'; END $$ LANGUAGE plpgsql"
        )
        cursor.execute(
            "CREATE TRIGGER refuse_ready BEFORE UPDATE ON search_photo FOR EACH ROW "
            "WHEN (NEW.status = 'ready') EXECUTE FUNCTION refuse_ready()"
        )

    with pytest.raises(OperationalError, match="No space left on device"):
        embed_waiting()

    stored = sorted(
        str(p.relative_to(settings.MEDIA_ROOT))
        for p in Path(settings.MEDIA_ROOT).rglob("*")
        if p.is_file()
    )
    assert stored == [photo.file.name]
    photo.refresh_from_db()
    assert (photo.status, photo.thumbnail.name, photo.preview.name) == ("pending", "", "")
    assert not Embedding.objects.exists()
