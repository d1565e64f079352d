import logging

from django.db import InterfaceError, OperationalError
from django.http import JsonResponse
from django.shortcuts import render

logger = logging.getLogger(__name__)


class ServiceUnavailableMiddleware:
    """Turn "the database is down" into a clear 503 page instead of a crash page.

    Django reconnects by itself on the next request (CONN_HEALTH_CHECKS), so the page only
    asks the person to try again.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, OperationalError | InterfaceError):
            return None
        logger.error("database unavailable: %s", exception)
        if request.path.startswith("/api/"):
            # API clients read JSON, like every other API error.
            response = JsonResponse(
                {"detail": "The database cannot be reached right now; try again shortly."},
                status=503,
            )
        else:
            response = render(request, "503.html", status=503)
        response["Retry-After"] = "10"
        return response
