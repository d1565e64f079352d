"""A model switch started on the dashboard, carried out by a real Celery worker process."""

import pytest
from django.urls import reverse

from search.ingest.active_model import forget_active_spec
from search.models import ClipModel, Embedding, Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file, wait_for
from workers.active_engine import get_engine

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]


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

    def switched() -> bool:
        return (
            ClipModel.objects.filter(model_id="MediaSearch-Demo/random-0", state="active").exists()
            and ClipModel.objects.filter(model_id=old_model, state="retired").exists()
        )

    wait_for(switched, timeout=180, message="the switch did not finish")
    assert set(Embedding.objects.values_list("model_id", flat=True)) == {
        "MediaSearch-Demo/random-0"
    }
    assert Embedding.objects.count() == 6
    forget_active_spec()
    page = client.get("/", {"q": "a red circle", "strictness": "all"})
    assert page.context["outcome"].hits and len(page.context["outcome"].hits) == 6
    client.force_login(staff)
    dashboard = client.get(reverse("search:dashboard")).content.decode()
    assert "MediaSearch-Demo/random-0" in dashboard and "Retired" in dashboard
