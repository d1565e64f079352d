"""The whole path on real parts: HTTP upload → Redis → Celery worker process → pgvector → search.

Nothing is mocked: the worker is a separate ``celery worker`` process that loads the model
itself, and the browser side is plain HTTP against Django's live server.
"""

import numpy as np
import pytest
import requests

from search.evaluation.search import result_ids
from search.models import Embedding, Photo
from tests.conftest import encode, make_image, wait_for
from tests.login import log_in
from tests.workers.embedding.vectors import assert_unit_length, cosines
from workers.active_engine import get_engine
from workers.embedding.images import decode_image

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

SCENES = {
    "red-circle.jpg": dict(color="red", shape="circle"),
    "blue-square.jpg": dict(color="blue", shape="square", background="yellow"),
    "green-triangle.png": dict(color="green", shape="triangle", background="black"),
    "white-circle.jpg": dict(color="white", shape="circle", background="purple"),
}


def logged_in_session(base_url: str, username: str, password: str) -> requests.Session:
    return log_in(requests.Session(), base_url, username=username, password=password)


def test_uploaded_photos_become_searchable_through_a_real_worker(live_server, celery_worker, alice):
    session = logged_in_session(live_server.url, "alice", "alice-password-1")
    files = [
        ("photos", (name, encode(make_image(**scene), "PNG" if name.endswith("png") else "JPEG")))
        for name, scene in SCENES.items()
    ]
    files.append(("photos", ("readme.jpg", b"this is not a photo", "image/jpeg")))

    upload_page = session.get(f"{live_server.url}/upload/")
    response = session.post(
        f"{live_server.url}/upload/",
        files=files,
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": upload_page.url},
    )

    assert response.status_code == 200 and response.url == f"{live_server.url}/photos/"
    assert "4 photo(s) uploaded and queued." in response.text
    assert "readme.jpg: not a supported image" in response.text

    wait_for(
        lambda: Photo.objects.filter(owner=alice, status="ready").count() == 4,
        timeout=120,
        message="photos did not become ready",
    )
    listing = session.get(f"{live_server.url}/photos/").text
    assert listing.count('class="status status-ready"') == 4

    # The worker process embedded with the same model as this process, one vector per photo.
    engine = get_engine()
    assert Embedding.objects.filter(model_id=engine.model_id).count() == 4
    for photo in Photo.objects.filter(owner=alice):
        stored = np.asarray(Embedding.objects.get(photo=photo).vector)
        with photo.file.open("rb") as handle:
            expected = engine.encode_images([decode_image(handle)])[0]
        assert_unit_length(stored)
        assert cosines(stored, expected)[0] >= 0.9999

    # Text search over HTTP ranks exactly by cosine similarity to the encoded query.
    query = "a blue square on a yellow background"
    text_vector = engine.encode_texts([query])[0]
    assert_unit_length(text_vector)  # so that a dot product ranks as the cosine does
    vectors = {e.photo_id: np.asarray(e.vector) for e in Embedding.objects.all()}
    expected_ranking = sorted(vectors, key=lambda pk: -float(vectors[pk] @ text_vector))
    page = session.get(f"{live_server.url}/", params={"q": query, "strictness": "all"}).text
    assert result_ids(page) == expected_ranking

    # "Find similar" on a photo puts its near-duplicate first.
    near_duplicate = make_image(**SCENES["blue-square.jpg"]).resize((300, 220))
    session.post(
        f"{live_server.url}/upload/",
        files=[("photos", ("blue-square-copy.jpg", encode(near_duplicate, quality=60)))],
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": upload_page.url},
    )
    wait_for(lambda: Photo.objects.filter(status="ready").count() == 5, timeout=60)
    original = Photo.objects.get(original_filename="blue-square.jpg")
    copy = Photo.objects.get(original_filename="blue-square-copy.jpg")
    similar = session.get(f"{live_server.url}/photos/{original.pk}/similar/").text
    assert result_ids(similar)[:2] == [original.pk, copy.pk]  # the query photo, then its copy

    # Thumbnails are served to their owner.
    thumbnail = session.get(f"{live_server.url}/photos/{copy.pk}/thumbnail/")
    assert (thumbnail.status_code, thumbnail.headers["Content-Type"]) == (200, "image/jpeg")


def test_a_damaged_photo_fails_alone_with_its_reason(live_server, celery_worker, alice):
    from django.core.files.base import ContentFile

    from search.photos.services import photo_create
    from tests.conftest import upload_file

    good = photo_create(owner=alice, file=upload_file("good.jpg", encode(make_image()))).photo
    data = encode(make_image(size=(400, 400)), quality=95)
    # A JPEG whose header is fine but whose data stops halfway: accepted at upload, the
    # worker finds the damage.
    broken = photo_create(owner=alice, file=ContentFile(data[: len(data) // 2], name="half.jpg"))
    broken = broken.photo

    wait_for(
        lambda: set(Photo.objects.values_list("status", flat=True)) == {"ready", "failed"},
        timeout=90,
    )
    broken.refresh_from_db()
    assert broken.status == "failed"
    assert broken.failure_reason.startswith("the image data is damaged or incomplete")
    assert broken.attempts == 1  # bad input is never retried
    assert Photo.objects.get(pk=good.pk).status == "ready"


def test_a_hundred_photos_with_one_bad_file_give_99_searchable_and_one_visible_failure(
    live_server, celery_worker, alice
):
    session = logged_in_session(live_server.url, "alice", "alice-password-1")
    colours = [
        "red",
        "blue",
        "green",
        "orange",
        "purple",
        "white",
        "black",
        "yellow",
        "pink",
        "grey",
    ]
    files = []
    for i in range(99):
        image = make_image(
            color=colours[i % 10], background=colours[(i // 10) % 10], size=(160, 120)
        )
        image.putpixel((0, 0), (i, 0, 0))
        files.append(("photos", (f"photo-{i:02d}.jpg", encode(image))))
    good = encode(make_image(size=(400, 400)), quality=95)
    files.insert(50, ("photos", ("damaged.jpg", good[: len(good) // 2])))

    response = session.post(
        f"{live_server.url}/upload/",
        files=files,
        data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{live_server.url}/upload/"},
    )
    assert "100 photo(s) uploaded and queued." in response.text

    wait_for(
        lambda: not Photo.objects.filter(status__in=["pending", "processing"]).exists(),
        timeout=180,
    )
    assert Photo.objects.filter(status="ready").count() == 99
    failed = Photo.objects.get(status="failed")
    assert failed.original_filename == "damaged.jpg"
    assert Embedding.objects.count() == 99

    listing = session.get(f"{live_server.url}/photos/", params={"page": 2}).text
    listing += (
        session.get(f"{live_server.url}/photos/").text
        + session.get(f"{live_server.url}/photos/", params={"page": 3}).text
    )
    assert "damaged.jpg" in listing
    assert "the image data is damaged or incomplete" in listing
    everything = {"q": "red", "strictness": "all"}
    assert len(result_ids(session.get(f"{live_server.url}/", params=everything).text)) == 60


def test_two_workers_share_the_queue_without_claiming_a_photo_twice(celery_processes, alice):
    from search.photos.services import photo_create
    from tests.conftest import upload_file

    env = {"MEDIASEARCH_EMBED_BATCH_SIZE": "4"}
    celery_processes.worker(**env)
    celery_processes.worker(**env)
    created = 0
    for i in range(60):
        image = make_image(color="blue", size=(480, 360))
        image.putpixel((0, 0), (i, i, 0))  # lossless PNG keeps every file distinct
        data = encode(image, "PNG")
        upload = upload_file(f"{i}.png", data, "image/png")
        created += photo_create(owner=alice, file=upload).created
    assert created == 60

    wait_for(lambda: Photo.objects.filter(status="ready").count() == 60, timeout=180)
    assert set(Photo.objects.values_list("attempts", flat=True)) == {1}
    assert Embedding.objects.count() == 60
