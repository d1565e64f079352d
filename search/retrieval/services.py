"""Writes of the retrieval concern: the search log."""

from __future__ import annotations

from search.models import (
    SearchLog,
)
from search.retrieval.query import SearchFilters

# --- the search log -------------------------------------------------------------------------


def search_log_record(
    *, user, outcome, query: str, filters: SearchFilters, via_api: bool = False
) -> SearchLog:
    """Record one search (a ``selectors.SearchOutcome``) for the dashboard."""
    return SearchLog.objects.create(
        user=user if user.is_authenticated else None,
        kind=outcome.kind,
        query=query[:500],
        filters=filters.as_log(),
        via_api=via_api,
        result_count=len(outcome.hits),
        top_score=outcome.top_score,
        latency_ms=outcome.latency_ms,
    )
