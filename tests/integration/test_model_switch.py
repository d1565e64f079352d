"""A model switch carried out by real Celery worker (and beat) processes."""

import threading
import time

import pytest
import redis
from django.conf import settings
from django.db import connection
from django.urls import reverse

from search.ingest.active_model import ACTIVE_SPEC_TTL, forget_active_spec
from search.ingest.model_switch import model_switch_start
from search.models import ClipModel, Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.query import Strictness
from search.retrieval.selectors import photo_search
from tests.conftest import encode, make_image, upload_file, wait_for
from workers.active_engine import get_engine

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]
INCOMING_ID = "MediaSearch-Demo/random-0"  # the demo architecture, randomly initialised
COLOURS = ["red", "blue", "green", "yellow", "purple", "orange", "white", "black"]


def ready_photos(owner, count: int) -> list[Photo]:
    photos = []
    for i in range(count):
        image = make_image(color=COLOURS[i % 8], shape=["circle", "square", "triangle"][i % 3])
        image.putpixel((0, 0), (i, i, i))  # every file distinct
        photos.append(photo_create(owner=owner, file=upload_file(f"{i}.jpg", encode(image))).photo)
    ids = [photo.pk for photo in photos]
    wait_for(lambda: Photo.objects.filter(pk__in=ids, status="ready").count() == count, timeout=120)
    return photos


def switched_from(old_model: str) -> bool:
    return (
        ClipModel.objects.filter(model_id=INCOMING_ID, state="active").exists()
        and ClipModel.objects.filter(model_id=old_model, state="retired").exists()
    )


def test_switch_from_the_dashboard_builds_in_the_background_then_takes_over(
    celery_worker, client, alice, staff
):
    for i, color in enumerate(["red", "blue", "green", "yellow", "purple", "orange"]):
        data = encode(make_image(color=color, shape=["circle", "square", "triangle"][i % 3]))
        photo_create(owner=alice, file=upload_file(f"{color}.jpg", data))
    wait_for(lambda: Photo.objects.filter(status="ready").count() == 6, timeout=120)
    old_model = get_engine().model_id
    client.force_login(staff)

    response = client.post(
        reverse("search:dashboard_action", args=["switch"]),
        {"name": "MediaSearch-Demo", "pretrained": ""},
        follow=True,
    )
    assert "Loading the new model" in response.content.decode()
    # Search answers during the switch, from the old model's vectors.
    client.force_login(alice)
    assert client.get("/", {"q": "a red circle", "strictness": "all"}).status_code == 200

    wait_for(lambda: switched_from(old_model), timeout=180, message="the switch did not finish")
    assert set(Embedding.objects.values_list("model_id", flat=True)) == {INCOMING_ID}
    assert Embedding.objects.count() == 6
    forget_active_spec()
    page = client.get("/", {"q": "a red circle", "strictness": "all"})
    assert page.context["outcome"].hits and len(page.context["outcome"].hits) == 6
    client.force_login(staff)
    dashboard = client.get(reverse("search:dashboard")).content.decode()
    assert INCOMING_ID in dashboard and "Retired" in dashboard


def test_searches_through_a_switch_never_come_back_empty(celery_worker, alice):
    photos = ready_photos(alice, 12)
    old_model = get_engine().model_id
    answers: list[tuple[str, int]] = []  # (the model this process took as active, results)
    stop = threading.Event()

    def search_once_in_a_while() -> None:
        """A web process's searches: its idea of the active model is cached as in production."""
        try:
            while not stop.is_set():
                model_id = get_engine().model_id
                outcome = photo_search(user=alice, text="a red circle", strictness=Strictness.ALL)
                answers.append((model_id, len(outcome.hits)))
                time.sleep(0.05)
        finally:
            connection.close()

    searcher = threading.Thread(target=search_once_in_a_while)
    searcher.start()
    try:
        model_switch_start(name="MediaSearch-Demo", pretrained="")
        wait_for(lambda: switched_from(old_model), timeout=180, message="no switch")
        time.sleep(ACTIVE_SPEC_TTL + 1)  # until the searcher has surely re-read the model
    finally:
        stop.set()
        searcher.join(30)

    short = [answer for answer in answers if answer[1] != len(photos)]
    print(f"{len(answers)} searches through the switch, {len(short)} short of every photo")
    assert {model_id for model_id, _ in answers} == {old_model, INCOMING_ID}
    assert short == []


def test_a_switch_whose_message_was_lost_is_resent_by_the_sweeper(celery_processes, alice):
    env = {"MEDIASEARCH_PENDING_REQUEUE_AFTER": "3", "MEDIASEARCH_SWEEP_INTERVAL": "1"}
    worker = celery_processes.worker(**env)
    ready_photos(alice, 6)
    old_model = get_engine().model_id
    celery_processes.kill(worker)
    broker = redis.Redis.from_url(settings.REDIS_URL)
    # (work the killed worker had not taken yet: near-duplicates on the maintenance queue)
    broker.delete(*settings.MEDIASEARCH_QUEUES)

    incoming = model_switch_start(name="MediaSearch-Demo", pretrained="")
    assert broker.llen("celery") == 1  # the step was sent...
    broker.delete("celery")  # ...and lost (Redis restarted without its data, say)
    celery_processes.worker(**env)
    time.sleep(4)
    assert ClipModel.objects.get(pk=incoming.pk).state == "preparing"  # nothing to run

    celery_processes.beat(**env)  # the sweeper re-sends the stalled step
    wait_for(lambda: switched_from(old_model), timeout=180, message="the switch did not finish")
    assert Embedding.objects.filter(model_id=INCOMING_ID).count() == 6
    assert not Embedding.objects.filter(model_id=old_model).exists()
