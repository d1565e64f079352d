"""What the web pages share: the grid's page size, ids read from a form, content negotiation."""

from __future__ import annotations

from django.http import HttpRequest

RESULTS_PER_PAGE = 60


def ids_from(values: list[str]) -> list[int]:
    # Plain ASCII digits that fit a bigint; anything else is no id of ours.
    return [
        int(value) for value in values if value.isascii() and value.isdigit() and len(value) < 19
    ]


def prefers_json(request: HttpRequest) -> bool:
    # The upload page's script asks for JSON; a plain form post (no script) prefers HTML.
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"
