"""Fixed-window rate limits on upload and search, per user and per IP address. (Login has a
lockout of failures instead, django-axes: see mediasearch/settings/security.py.)

Counters live in the Django cache (Redis, shared by every web process). A window is a whole
multiple of its length since the epoch, so every process agrees on it without coordination; a
burst of twice the limit across a window boundary is the known price of that simplicity.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import math
import time
from dataclasses import dataclass

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis import RedisError

from search.accounts.services import api_token_digest
from search.models import ApiToken

logger = logging.getLogger(__name__)

# Which requests count, by URL name: (bucket, methods). Searches by GET count only when they
# search (a query or "similar"), not when the empty search page is shown.
LIMITED_URLS = {
    "search:upload": ("upload", {"POST"}),
    "api:photos_upload": ("upload", {"POST"}),
    "search:home": ("search", {"GET"}),
    "search:search_by_image": ("search", {"POST"}),
    "search:photo_similar": ("search", {"GET"}),
    "api:search_text": ("search", {"GET"}),
    "api:search_image": ("search", {"POST"}),
    "api:photos_similar": ("search", {"GET"}),
}


@dataclass(frozen=True)
class Refusal:
    bucket: str
    retry_after: int  # seconds until the window that refused ends


def _now() -> float:
    return time.time()


def client_ip(request: HttpRequest) -> str:
    """The caller's address. Behind a TLS proxy (DJANGO_BEHIND_TLS_PROXY), the last address the
    proxy appended to X-Forwarded-For; otherwise the socket's peer."""
    if settings.MEDIASEARCH_TRUST_X_FORWARDED_FOR:
        forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
        if forwarded.strip():
            return forwarded.split(",")[-1].strip()
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def login_client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: ``client_ip`` when it is an IP address, else None (a request
    made in process, like ``force_login``'s, has none), which axes stores as unknown."""
    address = client_ip(request)
    try:
        ipaddress.ip_address(address)
    except ValueError:
        return None
    return address


def rate_limit_count(*, bucket: str, scope: str, who: str, limit: int, window: int) -> int | None:
    """Count one request of ``who`` against ``limit`` per ``window`` seconds.

    Returns None while within the limit, else the seconds until the window ends. When the cache
    cannot be reached the request is let through (logged): a Redis outage must not lock
    everyone out.
    """
    now = _now()
    start = int(now // window) * window
    digest = hashlib.sha256(who.encode()).hexdigest()[:32]
    key = f"ratelimit:{bucket}:{scope}:{digest}:{start}"
    try:
        cache.add(key, 0, timeout=window + 5)
        try:
            count = cache.incr(key)
        except ValueError:  # expired between add and incr
            cache.set(key, 1, timeout=window + 5)
            count = 1
    except (RedisError, OSError) as exc:
        logger.warning("rate limit not applied, the cache is unavailable: %s", exc)
        return None
    if count <= limit:
        return None
    return max(1, math.ceil(start + window - now))


def _is_counted(request: HttpRequest, url_name: str) -> bool:
    if url_name == "search:home":
        return bool(request.GET.get("q", "").strip() or request.GET.get("similar"))
    return True


def _user_key(request: HttpRequest, bucket: str) -> str | None:
    """Whom a request is for: the session's user, or the owner of the API token (one indexed
    lookup; an unknown token is limited by address only)."""
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return f"user:{user.pk}"
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header[:7].lower() == "bearer " and len(header) < 300:
        user_id = (
            ApiToken.objects.filter(key_hash=api_token_digest(header[7:].strip()))
            .values_list("user_id", flat=True)
            .first()
        )
        if user_id is not None:
            return f"user:{user_id}"
    return None


def rate_limit_check(request: HttpRequest, url_name: str) -> Refusal | None:
    """Count ``request`` if its URL is limited; a Refusal when it is over a limit."""
    if not settings.MEDIASEARCH_RATE_LIMITS_ENABLED or url_name not in LIMITED_URLS:
        return None
    bucket, methods = LIMITED_URLS[url_name]
    if request.method not in methods or not _is_counted(request, url_name):
        return None
    limit = settings.MEDIASEARCH_RATE_LIMITS[bucket]  # {"per_user", "per_ip", "window"}
    waits = []
    user = _user_key(request, bucket)
    if user is not None:
        waits.append(
            rate_limit_count(
                bucket=bucket,
                scope="user",
                who=user,
                limit=limit["per_user"],
                window=limit["window"],
            )
        )
    waits.append(
        rate_limit_count(
            bucket=bucket,
            scope="ip",
            who=client_ip(request),
            limit=limit["per_ip"],
            window=limit["window"],
        )
    )
    refused = [wait for wait in waits if wait is not None]
    if not refused:
        return None
    logger.warning("rate limit: %s refused (%s)", bucket, url_name)
    return Refusal(bucket=bucket, retry_after=max(refused))
