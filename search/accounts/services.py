"""API tokens: made, revoked, and checked on every API call (only their SHA-256 is stored)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.db.models import Q
from django.utils import timezone

from search.models import (
    ApiToken,
)

# --- API tokens -----------------------------------------------------------------------------


# A token's last use is recorded at most this often, so that requests do not each write a row.
API_TOKEN_TOUCH_INTERVAL = timedelta(minutes=1)


def api_token_digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_token_create(*, user, name: str) -> tuple[ApiToken, str]:
    """A new API token for ``user``; returns the row and the token itself, which is not stored
    (only its SHA-256 is) and so can be shown this once only."""
    key = secrets.token_urlsafe(32)
    token = ApiToken.objects.create(
        user=user, name=name.strip()[:100], key_hash=api_token_digest(key), prefix=key[:8]
    )
    return token, key


def api_token_revoke(*, user, token_id: int) -> bool:
    """Delete one of ``user``'s tokens; False when they have no token with that id."""
    deleted, _ = ApiToken.objects.filter(pk=token_id, user=user).delete()
    return deleted > 0


def api_token_authenticate(*, key: str):
    """The active user that ``key`` belongs to, or None; records when the token was last used.

    The lookup is by the SHA-256 of a 256-bit random token, so comparing in constant time would
    protect nothing: a timing difference cannot lead anyone towards a valid token.
    """
    if not key or len(key) > 200:
        return None
    token = ApiToken.objects.select_related("user").filter(key_hash=api_token_digest(key)).first()
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    stale = now - API_TOKEN_TOUCH_INTERVAL
    if token.last_used_at is None or token.last_used_at < stale:
        # Conditional, so that concurrent requests write it once.
        ApiToken.objects.filter(pk=token.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=stale)
        ).update(last_used_at=now)
    return token.user
