"""Site-wide views: the health check and the 400 page."""

from __future__ import annotations

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
    return JsonResponse({"status": "ok"})


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Mostly an upload over DATA_UPLOAD_MAX_NUMBER_FILES: Django refuses it before any view.
    return render(
        request, "400.html", {"max_files": settings.DATA_UPLOAD_MAX_NUMBER_FILES}, status=400
    )
