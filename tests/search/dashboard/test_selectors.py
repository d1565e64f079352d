"""Dashboard figures."""

from __future__ import annotations

import pytest

from search.dashboard.selectors import dashboard_stats
from search.models import Photo
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


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
