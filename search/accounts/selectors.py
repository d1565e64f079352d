"""Reads of the accounts concern: a user's tokens and what they have."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db.models import Count

from search.models import Album, ApiToken, Photo

if TYPE_CHECKING:
    pass


def api_tokens_for(*, user):
    """The user's API tokens, newest first (their hashes, never the tokens)."""
    return ApiToken.objects.filter(user=user).order_by("-created_at", "-id")


@dataclass(frozen=True)
class AccountSummary:
    photos: int
    photos_by_status: dict[str, int]
    albums: int  # owned
    shared_albums: int  # shared with the user by others


def account_summary(*, user) -> AccountSummary:
    """What one user has: their photos by state and their albums."""
    counts = dict(
        Photo.objects.filter(owner=user)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    by_status = {status.value: counts.get(status.value, 0) for status in Photo.Status}
    return AccountSummary(
        photos=sum(by_status.values()),
        photos_by_status=by_status,
        albums=Album.objects.filter(owner=user).count(),
        shared_albums=Album.objects.filter(shared_with=user).count(),
    )
