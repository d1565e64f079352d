"""The app on real object storage: ``MEDIASEARCH_STORAGE=s3`` against the embedded SeaweedFS
server, with a real Celery worker process and Django's live server, and the store stopped
during an upload, a worker's batch and a search.

Every file the rows name is in the bucket, and nothing else: after each step and each fault the
bucket is listed (``S3Bucket.object_names``), so a lost, half-written or left-behind object
shows.
"""

from __future__ import annotations

import io

import pytest
import requests

from search.accounts.services import api_token_create
from search.evaluation.search import result_ids
from search.models import Embedding, NearDuplicatePair, Photo
from tests.conftest import S3Bucket, encode, make_image, wait_for
from tests.login import log_in
from workers.embedding.demo.scenes import Scene
from workers.embedding.demo.videos import render_video

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def stored_names() -> set[str]:
    """Every file name the rows point at."""
    return {
        name
        for row in Photo.objects.values_list("file", "thumbnail", "preview", "playable")
        for name in row
        if name
    }


def hevc_video() -> bytes:
    """Six seconds of HEVC in MOV: a browser cannot play it, so the worker makes a copy."""
    scenes = [
        (3.0, Scene("circle", "blue", 1, "large", "middle", "white", "plain", 0)),
        (3.0, Scene("star", "red", 1, "large", "middle", "white", "plain", 0)),
    ]
    out = io.BytesIO()
    render_video(out, scenes, codec="hevc", container="mov")
    return out.getvalue()


class Browser:
    """A logged-in ``requests`` session on the live server, with the upload form's CSRF."""

    def __init__(self, base_url: str, username: str, password: str) -> None:
        self.base = base_url
        self.session = log_in(requests.Session(), base_url, username=username, password=password)

    def get(self, path: str, **kwargs) -> requests.Response:
        return self.session.get(self.base + path, timeout=60, **kwargs)

    def post(self, path: str, **kwargs) -> requests.Response:
        referer = self.base + path
        self.session.get(referer, timeout=60)
        data = {"csrfmiddlewaretoken": self.session.cookies["csrftoken"], **kwargs.pop("data", {})}
        return self.session.post(
            referer, data=data, headers={"Referer": referer}, timeout=120, **kwargs
        )

    def upload(self, *files: tuple[str, bytes]) -> requests.Response:
        return self.post("/upload/", files=[("photos", (name, data)) for name, data in files])


def test_every_path_works_on_s3_through_a_real_worker(
    live_server, s3_storage, celery_processes, client, alice, bob
):
    celery_processes.worker()
    browser = Browser(live_server.url, "alice", "alice-password-1")
    red = encode(make_image(color="red", shape="circle"))
    blue = encode(make_image(color="blue", shape="square", background="yellow"), "PNG")
    # Re-saved smaller and at a lower quality: a near-duplicate of the red circle.
    red_copy = encode(make_image(color="red", shape="circle").resize((300, 225)), quality=60)
    video = hevc_video()

    page = browser.upload(
        ("red.jpg", red), ("blue.png", blue), ("red-copy.jpg", red_copy), ("phone.mov", video)
    )
    assert "4 photo(s) uploaded and queued." in page.text
    again = browser.upload(("red-again.jpg", red))  # the same bytes: the photo she has
    assert Photo.objects.count() == 4 and "red.jpg: already in your library." in again.text

    wait_for(
        lambda: Photo.objects.filter(status="ready").count() == 4,
        timeout=180,
        message="not every upload became ready on S3",
    )
    photos = {p.original_filename: p for p in Photo.objects.all()}
    movie = photos["phone.mov"]
    assert movie.playable and movie.thumbnail and movie.video_codec == "hevc"
    assert Embedding.objects.filter(photo=photos["red.jpg"]).count() == 1
    # Originals, thumbnails, previews and the playable copy are all in the bucket, and nothing
    # else is (no rendition of an unfinished attempt, no second copy of the duplicate).
    assert s3_storage.object_names() == stored_names()
    assert len(stored_names()) == 4 * 3 + 1

    # Served after the visibility check, streamed from S3, byte for byte.
    for photo in photos.values():
        for kind, field in (("thumbnail", photo.thumbnail), ("preview", photo.preview)):
            served = browser.get(f"/photos/{photo.pk}/{kind}/")
            with field.open("rb") as handle:
                assert (served.status_code, served.content) == (200, handle.read())
    original = browser.get(f"/photos/{photos['blue.png'].pk}/original/", params={"download": 1})
    assert original.content == blue and original.headers["Content-Type"] == "image/png"
    # A range of the video is a ranged GET: exactly those bytes, the right Content-Range.
    ranged = browser.get(f"/photos/{movie.pk}/original/", headers={"Range": "bytes=100-1099"})
    assert ranged.status_code == 206 and ranged.content == video[100:1100]
    assert ranged.headers["Content-Range"] == f"bytes 100-1099/{len(video)}"
    with movie.playable.open("rb") as handle:
        playable = handle.read()
    tail = browser.get(f"/photos/{movie.pk}/playable/", headers={"Range": "bytes=-500"})
    assert tail.status_code == 206 and tail.content == playable[-500:]
    # Someone else gets "not found", as on local storage.
    client.force_login(bob)
    assert client.get(f"/photos/{movie.pk}/original/").status_code == 404

    # The duplicates page groups the copy with its original (the worker compared their
    # thumbnails, read back from S3).
    red_pair = {photos["red.jpg"].pk, photos["red-copy.jpg"].pk}
    assert NearDuplicatePair.objects.filter(photo__in=red_pair, other__in=red_pair).exists()
    duplicates = browser.get("/duplicates/").text
    assert red_pair <= set(result_ids(duplicates)) or all(
        f"/photos/{pk}/" in duplicates for pk in red_pair
    )

    # Search works and its tiles are served from S3.
    results = browser.get(
        "/", params={"q": "a blue square on a yellow background", "strictness": "all"}
    ).text
    assert result_ids(results)[0] == photos["blue.png"].pk

    # Deleting removes the objects themselves.
    deleted = browser.post("/photos/delete/", data={"photo": [photos["red-copy.jpg"].pk, movie.pk]})
    assert deleted.status_code == 200
    assert Photo.objects.count() == 2
    assert s3_storage.object_names() == stored_names()
    assert len(s3_storage.object_names()) == 2 * 3


def test_uploads_are_refused_clearly_while_the_store_is_down_and_leave_nothing(
    live_server, s3_storage: S3Bucket, alice
):
    token = api_token_create(user=alice, name="script")[1]
    browser = Browser(live_server.url, "alice", "alice-password-1")
    kept = browser.upload(("kept.jpg", encode(make_image(color="green"))))
    assert "1 photo(s) uploaded and queued." in kept.text
    before_rows = list(Photo.objects.values_list("pk", "file"))
    before_objects = s3_storage.object_names()

    s3_storage.server.stop(crash=True)
    try:
        refused = browser.upload(("lost.jpg", encode(make_image(color="purple"))))
        api = requests.post(
            f"{live_server.url}/api/photos",
            files=[("files", ("api.jpg", encode(make_image(color="orange"))))],
            headers={"Authorization": f"Bearer {token}"},
            timeout=120,
        )
    finally:
        s3_storage.server.start()

    assert refused.status_code == 200
    assert "lost.jpg: could not be stored: the file store cannot be reached right now" in (
        refused.text
    )
    assert api.status_code == 200
    assert api.json()["rejected"] == 1
    assert "the file store cannot be reached right now" in api.json()["results"][0]["reason"]
    assert list(Photo.objects.values_list("pk", "file")) == before_rows
    assert s3_storage.object_names() == before_objects


def test_a_worker_batch_waits_out_a_store_outage_and_finishes_once_it_is_back(
    live_server, s3_storage: S3Bucket, celery_processes, alice
):
    browser = Browser(live_server.url, "alice", "alice-password-1")
    colours = ["red", "blue", "green", "orange", "purple", "white"]
    page = browser.upload(
        *((f"{c}.jpg", encode(make_image(color=c, shape="square"))) for c in colours)
    )
    assert "6 photo(s) uploaded and queued." in page.text

    s3_storage.server.stop(crash=True)
    try:
        worker = celery_processes.worker(MEDIASEARCH_EMBED_BATCH_SIZE="4")
        # The worker takes a batch, cannot read the originals, gives the batch back and
        # retries with backoff; nothing fails meanwhile.
        wait_for(
            lambda: "Retry in" in celery_processes.log(worker),
            timeout=60,
            message="the worker did not retry the batch it could not read",
        )
        failed = list(
            Photo.objects.filter(status="failed").values_list("failure_reason", flat=True)
        )
        assert not failed, celery_processes.log(worker)
        assert not Embedding.objects.exists()
    finally:
        s3_storage.server.start()

    try:
        wait_for(lambda: Photo.objects.filter(status="ready").count() == 6, timeout=120)
    except AssertionError:
        statuses = list(Photo.objects.values_list("status", "attempts", "failure_reason"))
        raise AssertionError(
            f"the batch did not finish once the store was back: {statuses}\n"
            + celery_processes.log(worker)[-6000:]
        ) from None
    assert Embedding.objects.count() == 6 and Photo.objects.count() == 6
    assert s3_storage.object_names() == stored_names()
    assert len(stored_names()) == 6 * 3


def test_pages_answer_while_the_store_is_down(live_server, s3_storage: S3Bucket, alice):
    from tests.pipeline import embed_waiting

    token = api_token_create(user=alice, name="script")[1]
    browser = Browser(live_server.url, "alice", "alice-password-1")
    browser.upload(("red.jpg", encode(make_image(color="red"))))
    embed_waiting(batch_size=2)
    photo = Photo.objects.get()
    objects = s3_storage.object_names()

    s3_storage.server.stop(crash=True)
    try:
        search = browser.get("/", params={"q": "a red circle", "strictness": "all"})
        detail = browser.get(f"/photos/{photo.pk}/")
        thumbnail = browser.get(f"/photos/{photo.pk}/thumbnail/")
        api_thumbnail = requests.get(
            f"{live_server.url}/api/photos/{photo.pk}/thumbnail",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
    finally:
        s3_storage.server.start()

    assert (search.status_code, result_ids(search.text)) == (200, [photo.pk])
    assert detail.status_code == 200
    assert thumbnail.status_code == 503 and thumbnail.headers["Retry-After"] == "10"
    assert "The file store cannot be reached right now" in thumbnail.text
    assert api_thumbnail.status_code == 503
    assert api_thumbnail.json() == {
        "detail": "The file store cannot be reached right now; try again shortly."
    }
    # Once it is back, the same thumbnail is served, and nothing was lost.
    assert browser.get(f"/photos/{photo.pk}/thumbnail/").status_code == 200
    assert s3_storage.object_names() == objects == stored_names()
