"""What the web pages share: the grid's page size, ids read from a form, content negotiation,
where to go back to."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponseRedirect
from django.utils.http import url_has_allowed_host_and_scheme

RESULTS_PER_PAGE = 60


def ids_from(values: list[str]) -> list[int]:
    # Plain ASCII digits that fit a bigint; anything else is no id of ours.
    return [
        int(value) for value in values if value.isascii() and value.isdigit() and len(value) < 19
    ]


def prefers_json(request: HttpRequest) -> bool:
    # The upload page's script asks for JSON; a plain form post (no script) prefers HTML.
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


def redirect_back(request: HttpRequest, next_url: str | None, default: str) -> HttpResponseRedirect:
    """To ``next_url`` when it is a path on this site, else to ``default``.

    ``next`` comes from the client: another host (``https://evil.example``, ``//evil.example``)
    would be an open redirect, and it is never read as a URL name (``redirect("abc")`` fails)."""
    if (
        next_url
        and next_url.startswith("/")
        and next_url.isprintable()
        and url_has_allowed_host_and_scheme(
            next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        )
    ):
        return HttpResponseRedirect(next_url)
    return HttpResponseRedirect(default)
