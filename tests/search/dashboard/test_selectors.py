"""Dashboard figures."""

from __future__ import annotations

import pytest

from search.dashboard.selectors import dashboard_stats
from search.ingest.services import photos_embed
from search.models import Photo
from search.photos.services import photo_create
from tests.conftest import encode, make_image, upload_file
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


@pytest.fixture
def library(alice) -> list[Photo]:
    colours = ["red", "blue", "green", "white"]
    photos = [
        photo_create(
            owner=alice, file=upload_file(f"{i}.jpg", encode(make_image(color=colour)))
        ).photo
        for i, colour in enumerate(colours)
    ]
    photos_embed(photo_id=photos[0].pk, batch_size=len(photos))  # one batch, as a worker would
    return photos


def test_dashboard_counts_states_and_lists_failures_with_reasons(
    alice, library, django_assert_max_num_queries
):
    Photo.objects.filter(pk=library[0].pk).update(
        status="failed", failure_reason="the file is empty"
    )
    with django_assert_max_num_queries(3):
        stats = dashboard_stats()
    assert stats.by_status == {"pending": 0, "processing": 0, "ready": 3, "failed": 1}
    assert stats.total == 4
    assert [(row.filename, row.reason) for row in stats.latest_failures] == [
        ("0.jpg", "the file is empty")
    ]
    assert stats.embeddings_by_model == {get_engine().model_id: 4}
