"""Claims, leases and failure bookkeeping: only the attempt that holds a photo may finish, fail
or release it; a live attempt keeps its photos; errors are sorted into outages, time limits and
bugs, and a bug fails only the photo that causes it."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.db import DataError
from django.utils import timezone

from search.ingest import services
from search.ingest.services import photos_embed, photos_requeue_stalled
from search.models import Embedding, Photo, rendition_names
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from workers.active_engine import get_engine
from workers.tasks import embed_photo

pytestmark = pytest.mark.django_db


def waiting_photos(owner, count: int) -> list[Photo]:
    return [
        photo_create(
            owner=owner, file=upload_file(f"{i}.png", encode(make_image(size=(60 + i, 60)), "PNG"))
        ).photo
        for i in range(count)
    ]


def media_files(settings) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_an_error_after_the_photos_were_saved_leaves_them_ready(alice, monkeypatch):
    (photo,) = waiting_photos(alice, 1)

    def broken_send(*args, **kwargs):
        raise RuntimeError("after the commit")

    monkeypatch.setattr(services.dispatch, "find_near_duplicates", broken_send)

    photos_embed(photo_id=photo.pk, batch_size=4)

    photo.refresh_from_db()
    assert (photo.status, photo.failure_reason) == ("ready", "")
    assert Embedding.objects.filter(photo=photo).exists()


def test_a_bug_caused_by_one_photo_fails_that_photo_alone(alice, monkeypatch):
    photos = waiting_photos(alice, 4)
    poisoned = photos[2]
    real_prepare = services.prepare_photo

    def prepare(handle, **kwargs):
        if handle.name.endswith(Path(poisoned.file.name).name):
            raise ValueError("a bug in the decoder")
        return real_prepare(handle, **kwargs)

    monkeypatch.setattr(services, "prepare_photo", prepare)

    statuses = photos_embed(photo_id=photos[0].pk, batch_size=10)

    assert statuses == {
        **{p.pk: "ready" for p in photos if p != poisoned},
        poisoned.pk: "failed",
    }
    poisoned.refresh_from_db()
    assert poisoned.failure_reason == "internal error: ValueError('a bug in the decoder')"
    assert not Photo.objects.filter(status="processing").exists()


def test_a_time_limit_gives_the_batch_back_and_fails_nothing(alice, monkeypatch):
    photos = waiting_photos(alice, 3)

    def out_of_time(images):
        raise SoftTimeLimitExceeded()

    monkeypatch.setattr(get_engine(), "encode_images", out_of_time)

    assert embed_photo.apply(args=(photos[0].pk,)).get() is None

    rows = Photo.objects.filter(pk__in=[p.pk for p in photos])
    assert set(rows.values_list("status", "attempts", "failure_reason")) == {("pending", 1, "")}
    assert not Embedding.objects.exists()


@pytest.mark.parametrize("error", [DataError("value too long"), ZeroDivisionError("bug")])
def test_a_data_error_or_bug_is_not_retried_as_an_outage(alice, monkeypatch, error):
    (photo,) = waiting_photos(alice, 1)
    calls = []

    def broken(images):
        calls.append(len(images))
        raise error

    monkeypatch.setattr(get_engine(), "encode_images", broken)

    result = embed_photo.apply(args=(photo.pk,))

    assert result.successful()  # no Retry raised: once is enough
    assert calls == [1]
    photo.refresh_from_db()
    assert photo.status == "failed"
    assert photo.failure_reason == f"internal error: {error!r}"


def test_an_attempt_that_lost_its_claim_changes_nothing(alice, settings, monkeypatch):
    (photo,) = waiting_photos(alice, 1)
    real_encode = get_engine().encode_images

    def taken_over_meanwhile(images):
        # Its lease ran out (the worker stalled) and another attempt claimed the photo.
        Photo.objects.filter(pk=photo.pk).update(claim_token=uuid.uuid4())
        return real_encode(images)

    monkeypatch.setattr(get_engine(), "encode_images", taken_over_meanwhile)

    assert photos_embed(photo_id=photo.pk, batch_size=1) == {}

    photo.refresh_from_db()
    assert (photo.status, photo.thumbnail.name) == ("processing", "")
    assert not Embedding.objects.exists()
    assert media_files(settings) == [photo.file.name]  # its renditions were removed


def test_the_next_attempt_removes_what_a_dead_attempt_wrote(alice, settings):
    (photo,) = waiting_photos(alice, 1)
    dead = uuid.uuid4()
    for name in rendition_names(photo, dead):
        photo.file.storage.save(name, upload_file("x.jpg", b"half a rendition"))
    Photo.objects.filter(pk=photo.pk).update(
        status="processing", claim_token=dead, lease_expires_at=timezone.now()
    )

    assert photos_embed(photo_id=photo.pk, batch_size=1) == {photo.pk: "ready"}

    photo.refresh_from_db()
    assert media_files(settings) == sorted(
        [photo.file.name, photo.thumbnail.name, photo.preview.name]
    )
    assert dead.hex not in photo.thumbnail.name


@pytest.mark.django_db(transaction=True)
def test_a_slow_attempt_keeps_its_photos_while_it_renews_the_lease(alice, settings, monkeypatch):
    settings.MEDIASEARCH_CLAIM_LEASE = 1
    photos = waiting_photos(alice, 3)
    real_encode = get_engine().encode_images
    swept = []

    def slow(images):
        time.sleep(2.5)  # well past the first lease
        swept.extend(photos_requeue_stalled())  # the sweeper runs meanwhile
        return real_encode(images)

    monkeypatch.setattr(get_engine(), "encode_images", slow)
    started = timezone.now()

    statuses = photos_embed(photo_id=photos[0].pk, batch_size=10)

    assert swept == []
    assert statuses == {p.pk: "ready" for p in photos}
    rows = Photo.objects.filter(pk__in=[p.pk for p in photos])
    assert set(rows.values_list("attempts", flat=True)) == {1}
    assert min(rows.values_list("processed_at", flat=True)) - started > timedelta(seconds=2)


@pytest.mark.django_db(transaction=True)
def test_without_renewal_the_lease_runs_out_and_the_sweeper_takes_the_photos(
    alice, settings, monkeypatch
):
    """The control for the test above: the lease is what keeps the photos."""
    settings.MEDIASEARCH_CLAIM_LEASE = 1
    photos = waiting_photos(alice, 2)
    real_encode = get_engine().encode_images
    swept = []

    def stalled(images):
        # As if the worker froze: its lease is not renewed.
        Photo.objects.filter(pk__in=[p.pk for p in photos]).update(
            lease_expires_at=timezone.now() - timedelta(seconds=1)
        )
        swept.extend(photos_requeue_stalled())
        return real_encode(images)

    monkeypatch.setattr(get_engine(), "encode_images", stalled)

    assert photos_embed(photo_id=photos[0].pk, batch_size=10) == {}

    assert sorted(swept) == [p.pk for p in photos]
    assert set(Photo.objects.values_list("status", flat=True)) == {"pending"}
    assert not Embedding.objects.exists()
