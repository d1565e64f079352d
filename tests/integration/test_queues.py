"""A queue per kind of work, on real worker processes: a worker that takes only the embedding
queue never runs maintenance, one that takes only maintenance runs it, and the dashboard shows
which workers take each queue."""

import pytest
from django.conf import settings
from django.urls import reverse

from search.models import NearDuplicatePair, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file, wait_for

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def test_each_kind_of_work_runs_on_the_workers_of_its_queue(celery_processes, alice, client, staff):
    photos = celery_processes.worker(queues=[settings.EMBEDDING_QUEUE])
    maintenance = celery_processes.worker(queues=[settings.MAINTENANCE_QUEUE])
    image = make_image(color="red", shape="circle", size=(640, 480))
    for name, data in (("a.jpg", encode(image)), ("b.png", encode(image, "PNG"))):
        photo_create(owner=alice, file=upload_file(name, data))  # two copies of one picture

    wait_for(
        lambda: NearDuplicatePair.objects.count() == 1,  # found by the maintenance worker
        timeout=120,
        message="the near-duplicate pair was not recorded",
    )
    assert set(Photo.objects.values_list("status", flat=True)) == {"ready"}
    assert "Task workers.tasks.find_near_duplicates" not in celery_processes.log(photos)
    assert "Task workers.tasks.embed_photo" in celery_processes.log(photos)
    assert "Task workers.tasks.find_near_duplicates" in celery_processes.log(maintenance)
    assert "Task workers.tasks.embed_photo" not in celery_processes.log(maintenance)

    client.force_login(staff)
    queues = {q.name: q for q in client.get(reverse("search:dashboard")).context["pipeline"].queues}
    assert [len(queues[name].workers or []) for name in settings.MEDIASEARCH_QUEUES] == [
        1 if name in (settings.EMBEDDING_QUEUE, settings.MAINTENANCE_QUEUE) else 0
        for name in settings.MEDIASEARCH_QUEUES
    ]
    assert queues[settings.EMBEDDING_QUEUE].workers != queues[settings.MAINTENANCE_QUEUE].workers
    assert queues[settings.EMBEDDING_QUEUE].depth == 0
