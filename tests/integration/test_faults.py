"""Faults with real processes: every photo still ends ready exactly once, and the app answers
clearly while a service is down.

The worker, beat, Redis and PostgreSQL are real processes; the faults are real too (SIGKILL,
server stops). Timeouts are shortened through the same environment variables production reads.
"""

import errno
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from django.core.files.storage import FileSystemStorage
from django.urls import reverse
from PIL import Image
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from mediasearch.embedded import test_services
from search.evaluation.search import result_ids
from search.models import Embedding, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

FAST_RECOVERY = {
    "MEDIASEARCH_CLAIM_LEASE": "3",
    "MEDIASEARCH_PENDING_REQUEUE_AFTER": "3",
    "MEDIASEARCH_SWEEP_INTERVAL": "1",
}


def photos_for(owner, count: int, size=(1600, 1200)) -> list[Photo]:
    colours = ["red", "blue", "green", "orange", "purple", "white", "black", "yellow"]
    shapes = ["circle", "square", "triangle"]
    photos = []
    for i in range(count):
        image = make_image(
            color=colours[i % 8], shape=shapes[i % 3], background=colours[(i // 8) % 8], size=size
        )
        image.putpixel((0, 0), (i, i, i))  # every file distinct
        photos.append(photo_create(owner=owner, file=upload_file(f"{i}.jpg", encode(image))).photo)
    return photos


def assert_all_ready_exactly_once(photos: list[Photo], timeout: float) -> None:
    ids = [p.pk for p in photos]
    wait_for(
        lambda: Photo.objects.filter(pk__in=ids, status="ready").count() == len(ids),
        timeout=timeout,
        message="not all photos became ready",
    )
    assert Embedding.objects.filter(photo_id__in=ids).count() == len(ids)
    assert Photo.objects.count() == len(ids)


def test_worker_killed_mid_batch_loses_and_duplicates_nothing(celery_processes, alice, settings):
    env = {**FAST_RECOVERY, "MEDIASEARCH_EMBED_BATCH_SIZE": "8"}
    photos = photos_for(alice, 32)
    worker = celery_processes.worker(**env)
    celery_processes.beat(**env)

    wait_for(lambda: Photo.objects.filter(status="processing").exists(), timeout=60, interval=0.01)
    celery_processes.kill(worker)
    held = list(Photo.objects.filter(status="processing").values_list("pk", flat=True))
    assert held, "the worker should have died holding a batch"

    celery_processes.worker(**env)

    assert_all_ready_exactly_once(photos, timeout=120)
    # Taken again exactly once, after the dead attempt's lease ran out.
    assert set(Photo.objects.filter(pk__in=held).values_list("attempts", flat=True)) == {2}
    assert_no_stray_files(settings)


def test_a_dead_workers_batch_is_resent_by_the_sweeper_once_its_lease_runs_out(
    celery_processes, alice, settings
):
    import redis

    env = {**FAST_RECOVERY, "MEDIASEARCH_EMBED_BATCH_SIZE": "8"}
    photos = photos_for(alice, 8)
    worker = celery_processes.worker(**env)
    wait_for(lambda: Photo.objects.filter(status="processing").exists(), timeout=60, interval=0.01)
    celery_processes.kill(worker)
    held = set(Photo.objects.filter(status="processing").values_list("pk", flat=True))
    assert held, "the worker should have died holding a batch"
    # The dead worker's message is unacknowledged (Redis gives it back only after its
    # visibility timeout, an hour), and the queue forgets the rest: only the sweeper can help.
    redis.Redis.from_url(settings.REDIS_URL).flushdb()

    celery_processes.worker(**env)
    time.sleep(int(FAST_RECOVERY["MEDIASEARCH_CLAIM_LEASE"]) + 3)
    assert set(Photo.objects.filter(pk__in=held).values_list("status", flat=True)) == {
        "processing"
    }, "nothing but the sweeper should take the dead worker's photos"

    celery_processes.beat(**env)
    assert_all_ready_exactly_once(photos, timeout=60)
    assert set(Photo.objects.filter(pk__in=held).values_list("attempts", flat=True)) == {2}
    assert_no_stray_files(settings)


def assert_no_stray_files(settings) -> None:
    """Storage holds exactly the files the rows point at: a dead attempt's renditions are gone."""
    root = Path(settings.MEDIA_ROOT)
    stored = sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())
    named = sorted(
        name
        for row in Photo.objects.values_list("file", "thumbnail", "preview", "playable")
        for name in row
        if name
    )
    assert stored == named


def test_redis_restart_while_photos_are_queued(celery_processes, alice, client, settings):
    redis = test_services.get("redis")
    if redis is None:
        pytest.skip("needs the embedded Redis (REDIS_URL points elsewhere)")
    celery_processes.worker(**FAST_RECOVERY)
    celery_processes.beat(**FAST_RECOVERY)

    broker = Redis.from_url(settings.REDIS_URL)
    assert broker.ping()
    redis.kill()  # a crash: whatever was queued is gone
    with pytest.raises(RedisConnectionError):
        broker.ping()  # really down, even when this run attached to a server already running
    client.force_login(alice)
    files = [
        upload_file(f"{i}.jpg", encode(make_image(color=c)))
        for i, c in enumerate(["red", "blue", "green"])
    ]
    response = client.post(reverse("search:upload"), {"photos": files}, follow=True)
    assert "3 photo(s) uploaded and queued." in response.content.decode()
    assert set(Photo.objects.values_list("status", flat=True)) == {"pending"}

    redis.start()
    assert broker.ping()

    assert_all_ready_exactly_once(list(Photo.objects.all()), timeout=120)


def test_messages_lost_from_redis_are_sent_again_by_the_sweeper(celery_processes, alice, settings):
    import redis

    photos = photos_for(alice, 6, size=(320, 240))
    broker = redis.Redis.from_url(settings.REDIS_URL)
    assert broker.llen("celery") == 6
    broker.flushdb()  # the queue forgets: only the database still knows the photos wait

    celery_processes.worker(**FAST_RECOVERY)
    celery_processes.beat(**FAST_RECOVERY)

    assert_all_ready_exactly_once(photos, timeout=120)


def test_postgres_restart_while_a_worker_runs_and_a_search_is_made(
    celery_processes, alice, live_server
):
    # Over real HTTP: Django's test client switches off the reconnect-per-request that real
    # servers rely on after an outage.
    from django.db import connection

    from tests.integration.test_pipeline import logged_in_session

    postgres = test_services.get("postgres")
    if postgres is None:
        pytest.skip("needs the embedded PostgreSQL (DATABASE_URL points elsewhere)")
    photos = photos_for(alice, 24)
    session = logged_in_session(live_server.url, "alice", "alice-password-1")
    celery_processes.worker(**FAST_RECOVERY)
    celery_processes.beat(**FAST_RECOVERY)
    wait_for(lambda: Photo.objects.filter(status="ready").exists(), timeout=60, interval=0.05)

    postgres.pause()
    try:
        response = session.get(f"{live_server.url}/photos/")
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "10"
        assert "The database cannot be reached right now." in response.text
        search = session.get(f"{live_server.url}/", params={"q": "a red circle"})
        assert (search.status_code, search.headers["Retry-After"]) == (503, "10")
        time.sleep(3)  # the worker meets the outage too
    finally:
        postgres.resume()
        connection.close()  # this test process's own connection died with the server

    response = session.get(f"{live_server.url}/photos/")
    assert response.status_code == 200 and "My photos" in response.text
    assert_all_ready_exactly_once(photos, timeout=120)
    # Search recovers by itself too, with every photo ranked.
    search = session.get(f"{live_server.url}/", params={"q": "a red circle", "strictness": "all"})
    assert search.status_code == 200 and len(result_ids(search.text)) == len(photos)


def test_worker_killed_during_a_model_switch_the_switch_still_completes(celery_processes, alice):
    from search.ingest.model_switch import model_switch_start
    from search.models import ClipModel

    env = {**FAST_RECOVERY, "MEDIASEARCH_EMBED_BATCH_SIZE": "8"}
    photos = photos_for(alice, 40, size=(800, 600))
    worker = celery_processes.worker(**env)
    celery_processes.beat(**env)
    assert_all_ready_exactly_once(photos, timeout=180)
    old_model = Embedding.objects.values_list("model_id", flat=True).first()

    incoming = model_switch_start(name="MediaSearch-Demo", pretrained="")
    new_vectors = Embedding.objects.filter(model_id="MediaSearch-Demo/random-0")
    wait_for(lambda: new_vectors.exists(), timeout=120, interval=0.02)
    celery_processes.kill(worker)  # mid-backfill: its message is never acknowledged
    assert new_vectors.count() < len(photos)
    celery_processes.worker(**env)  # the sweeper re-sends the stalled step

    def switched() -> bool:
        incoming.refresh_from_db()
        return (
            incoming.state == "active" and not Embedding.objects.filter(model_id=old_model).exists()
        )

    wait_for(switched, timeout=240, message="the switch did not finish after the kill")
    assert new_vectors.count() == len(photos)
    assert ClipModel.objects.get(model_id=old_model).state == "retired"


def test_a_full_disk_refuses_the_upload_clearly_and_keeps_nothing(alice_client, settings, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "tests.integration.test_faults.DiskFullStorage",
            "OPTIONS": {"location": str(tmp_path / "full")},
        },
    }
    good = upload_file("beach.jpg", encode(make_image(size=(640, 480))))

    response = alice_client.post(reverse("search:upload"), {"photos": [good]}, follow=True)

    page = response.content.decode()
    assert "beach.jpg: could not be stored: the server&#x27;s storage is full" in page
    assert Photo.objects.count() == 0
    assert [p for p in (tmp_path / "full").rglob("*") if p.is_file()] == []


class DiskFullStorage(FileSystemStorage):
    """A disk that fills up halfway through a file: the part written stays, then ENOSPC."""

    def _save(self, name, content):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(content.read(1024))
        raise OSError(errno.ENOSPC, "No space left on device")


@pytest.fixture
def full_disks(settings, tmp_path):
    """Mount a tiny tmpfs on each of the worker's rendition folders (thumbnails, previews) of
    this test's MEDIA_ROOT; originals stay on the normal disk. Yields a function that fills
    one folder to the last byte, and another that frees the space again."""
    mounts = {}
    for folder in ("thumbnails", "previews"):
        path = os.path.join(settings.MEDIA_ROOT, folder)
        os.makedirs(path)
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", path],
            capture_output=True, text=True,
        )  # fmt: skip
        if result.returncode:
            for mounted in mounts.values():
                subprocess.run(["umount", mounted], check=True)
            pytest.skip(f"needs a real full filesystem: mount -t tmpfs failed: {result.stderr}")
        mounts[folder] = path

    def fill(folder: str) -> None:
        with open(os.path.join(mounts[folder], FILLER), "wb", buffering=0) as filler:
            try:
                while True:
                    filler.write(b"\0" * 4096)
            except OSError as exc:
                assert exc.errno == errno.ENOSPC
        assert shutil.disk_usage(mounts[folder]).free == 0

    def free(folder: str) -> None:
        os.remove(os.path.join(mounts[folder], FILLER))

    try:
        yield fill, free
    finally:
        for path in mounts.values():
            subprocess.run(["umount", path], check=True)


FILLER = "filler.bin"


def rendition_files(media_root: str) -> set[str]:
    return {
        os.path.relpath(os.path.join(folder, name), media_root)
        for sub in ("thumbnails", "previews")
        for folder, _, names in os.walk(os.path.join(media_root, sub))
        for name in names
        if name != FILLER
    }


def test_a_full_disk_under_the_worker_leaves_no_partial_renditions_and_recovers(
    celery_processes, alice, settings, full_disks
):
    """A real full filesystem under the renditions: thumbnails still fit, previews do not.
    No photo may end ready without both files, no file is left half-written, and once space
    is freed every photo ends ready (OSError is transient: retried, then re-sent)."""
    fill, free = full_disks
    photos = photos_for(alice, 4, size=(800, 600))
    fill("previews")
    worker = celery_processes.worker(**FAST_RECOVERY)
    celery_processes.beat(**FAST_RECOVERY)
    ids = [p.pk for p in photos]
    rows = Photo.objects.filter(pk__in=ids)

    def tried_twice() -> bool:
        assert not rows.filter(status="ready").exists(), "ready while its preview cannot be written"
        return min(rows.values_list("attempts", flat=True)) >= 2

    wait_for(tried_twice, timeout=60, message="the worker did not try every photo twice")
    assert "No space left on device" in celery_processes.log(worker)
    assert set(rows.values_list("status", flat=True)) <= {"pending", "processing"}
    assert set(rows.values_list("failure_reason", flat=True)) == {""}
    assert not Embedding.objects.exists()
    assert rendition_files(settings.MEDIA_ROOT) == set()  # nothing written, nothing partial

    free("previews")

    assert_all_ready_exactly_once(photos, timeout=120)
    kept = set()
    for photo in Photo.objects.filter(pk__in=ids):
        assert photo.failure_reason == ""
        sizes = 0
        for field in (photo.thumbnail, photo.preview):
            with field.open("rb") as handle:
                Image.open(handle).load()  # whole JPEGs
            sizes += field.size
            kept.add(field.name)
        assert photo.derived_bytes == sizes
    assert rendition_files(settings.MEDIA_ROOT) == kept  # no orphans from the failed tries


def test_worker_killed_during_a_video_finishes_it_exactly_once(celery_processes, alice, settings):
    """kill -9 while the video worker transcodes and samples a video; the next worker takes it
    again once the lease runs out: ready once, one vector row per moment, no stray file."""
    import io

    from workers.embedding.demo.scenes import Scene
    from workers.embedding.demo.videos import render_video

    colours = ["red", "blue", "green", "orange", "purple", "yellow"]
    story = [
        (
            2.0,
            Scene(
                shape="star",
                colour=c,
                count=1,
                size="large",
                position="middle",
                background="white",
                pattern="plain",
                layout_seed=i,
            ),
        )
        for i, c in enumerate(colours * 4)
    ]
    data = io.BytesIO()
    render_video(data, story, size=(640, 480), fps=24, codec="hevc", container="mov")
    video = photo_create(
        owner=alice, file=upload_file("long.mov", data.getvalue(), "video/quicktime")
    ).photo
    photos = photos_for(alice, 4, size=(320, 240))  # and photos, which end ready too
    worker = celery_processes.worker(**FAST_RECOVERY)
    celery_processes.beat(**FAST_RECOVERY)

    wait_for(
        lambda: Photo.objects.filter(pk=video.pk, status="processing").exists(),
        timeout=60,
        interval=0.01,
    )
    celery_processes.kill(worker)
    assert Photo.objects.get(pk=video.pk).status == "processing", "it should die mid-video"

    celery_processes.worker(**FAST_RECOVERY)

    everything = [video, *photos]
    ids = [item.pk for item in everything]
    wait_for(
        lambda: Photo.objects.filter(pk__in=ids, status="ready").count() == len(ids),
        timeout=180,
        message="the video or the photos did not become ready after the kill",
    )
    video.refresh_from_db()
    assert video.attempts == 2
    moments = list(Embedding.objects.filter(photo=video).values_list("model_id", "frame_ms"))
    assert len(moments) == len(set(moments)) >= len(story) // 2
    assert video.playable and video.thumbnail
    assert_no_stray_files(settings)
