"""The duplicates page: groups side by side, to keep one and delete the others."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from search.duplicates.forms import DuplicateFilterForm
from search.duplicates.selectors import near_duplicate_groups
from workers.active_engine import get_engine


@login_required
@require_GET
def duplicates(request: HttpRequest) -> HttpResponse:
    """The user's near-duplicate groups at a distance they choose, to review side by side."""
    form = DuplicateFilterForm(request.GET or None)
    distance = form.chosen_distance()
    groups = near_duplicate_groups(
        user=request.user,
        model_id=get_engine().model_id,
        max_distance=distance,
        page=form.chosen_page(),
    )
    return render(
        request,
        "search/duplicates.html",
        {
            "form": form,
            "groups": groups,
            "distance": distance,
            "max_distance": settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE,
            "default_distance": settings.MEDIASEARCH_DUPLICATE_DISTANCE,
            "back": request.get_full_path(),
        },
    )
