import logging
import math

from axes.helpers import get_client_username
from axes.models import AccessAttempt
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from search.photos.storage import is_object_store_outage
from search.web.rate_limits import login_client_ip, rate_limit_check

logger = logging.getLogger(__name__)


class ServiceUnavailableMiddleware:
    """Turn "the database is down" or "the object store is down" into a clear 503 page instead
    of a crash page.

    Django reconnects by itself on the next request (CONN_HEALTH_CHECKS), and botocore on its
    next call, so the page only asks the person to try again.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, OperationalError | InterfaceError):
            what = "The database"
            logger.error("database unavailable: %s", exception)
        elif is_object_store_outage(exception):
            what = "The file store"
            logger.error("object store unavailable: %s", exception)
        else:
            return None
        if request.path.startswith("/api/"):
            # API clients read JSON, like every other API error.
            response: HttpResponse = JsonResponse(
                {"detail": f"{what} cannot be reached right now; try again shortly."},
                status=503,
            )
        else:
            response = render(request, "503.html", {"what": what}, status=503)
        response["Retry-After"] = "10"
        return response


class ApiErrorsAsJsonMiddleware:
    """Every error answer under /api/ is JSON, like those of the API's own handlers
    (``search.api.app``). Some are made before the API runs or outside its handlers: a method
    that the path does not take (ninja answers 405 in plain text), Django's 400 page, a 403 of
    the CSRF check."""

    KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "Content-Range", "Accept-Ranges")

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        content_type = response.get("Content-Type", "").split(";")[0]
        if (
            not request.path.startswith("/api/")
            or response.status_code < 400
            or content_type == "application/json"
        ):
            return response
        detail = f"{response.reason_phrase}."
        if response.status_code == 405:
            detail = f"Method not allowed: this address takes {response.get('Allow', 'no other')}."
        replacement = JsonResponse({"detail": detail}, status=response.status_code)
        for header in self.KEPT_HEADERS:
            if header in response:
                replacement[header] = response[header]
        return replacement


class ContentSecurityPolicyMiddleware:
    """A strict Content-Security-Policy on every response that does not set its own.

    Pages load scripts and styles only from this site (no inline code). Served photo files set
    a sandboxing policy of their own (``search.photos.files.photo_file_response``).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            response["Content-Security-Policy"] = settings.MEDIASEARCH_CSP
        return response


class RateLimitMiddleware:
    """429 with Retry-After for login, upload and search over their limits (search.rate_limits).

    Runs before the view, once the URL is resolved, so the view needs no decorator and a refused
    upload is not even read."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_view(self, request, view_func, view_args, view_kwargs):
        refusal = rate_limit_check(request, request.resolver_match.view_name)
        if refusal is None:
            return None
        return too_many(request, RATE_LIMIT_WHAT[refusal.bucket], refusal.retry_after)


RATE_LIMIT_WHAT = {"upload": "uploads", "search": "searches"}


def too_many(request, what: str, retry_after: int) -> HttpResponse:
    """429 with Retry-After: JSON for the API, the 429 page otherwise."""
    message = f"Too many {what}; try again in {retry_after} seconds."
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"detail": message}, status=429)
    else:
        response = render(request, "429.html", {"message": message}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def login_locked_out(request, original_response, credentials) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: the answer to a login from a (name, address) locked out for its
    failures, like every other 429. The lockout ends a cool-off after the last failure counted."""
    last = (
        AccessAttempt.objects.filter(
            username=get_client_username(request, credentials), ip_address=login_client_ip(request)
        )
        .order_by("-attempt_time")
        .values_list("attempt_time", flat=True)
        .first()
    )
    ends = (last or timezone.now()) + settings.AXES_COOLOFF_TIME
    wait = max(1, math.ceil((ends - timezone.now()).total_seconds()))
    return too_many(request, "failed logins", wait)
