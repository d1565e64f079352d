"""The search page: text, image and similar-photo queries with filters."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from search.photos.selectors import photos_visible_to
from search.retrieval.choices import search_choices_for
from search.retrieval.forms import ImageSearchForm, SearchForm
from search.retrieval.query import Strictness
from search.retrieval.selectors import SearchError, photo_search
from search.retrieval.services import search_log_record
from search.retrieval.tiles import result_tiles
from search.web.pages import RESULTS_PER_PAGE
from workers.active_engine import get_engine


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    """Text search, "find similar" (``?similar=<id>``) and both combined, with filters."""
    form = SearchForm(request.GET or None, choices=_search_choices(request))
    similar_to = None
    if form.is_bound and form.is_valid() and form.cleaned_data.get("similar"):
        similar_to = get_object_or_404(
            photos_visible_to(request.user), pk=form.cleaned_data["similar"]
        )
    return _search(request, form, similar_to=similar_to)


@login_required
@require_POST
def search_by_image(request: HttpRequest) -> HttpResponse:
    """An image given only for this query: it is decoded and encoded, never stored."""
    form = ImageSearchForm(request.POST, request.FILES, choices=_search_choices(request))
    return _search(request, form, image_query=True)


@login_required
@require_GET
def photo_similar(request: HttpRequest, pk: int) -> HttpResponse:
    get_object_or_404(photos_visible_to(request.user), pk=pk)
    # "Find similar" asks for the closest photos, so it starts from the loose cut-off.
    return redirect(f"{reverse('search:home')}?similar={pk}&strictness={Strictness.LOOSE}")


def _search_choices(request):
    return search_choices_for(user=request.user, model_id=get_engine().model_id)


def _search(request, form, *, similar_to=None, image_query: bool = False) -> HttpResponse:
    outcome, error = None, None
    wants_search = form.is_bound and (
        image_query or similar_to is not None or bool(request.GET.get("q", "").strip())
    )
    if wants_search and form.is_valid():
        query = form.cleaned_data["q"].strip()
        try:
            outcome = photo_search(
                user=request.user,
                text=query,
                image=form.cleaned_data.get("image"),
                similar_to=similar_to,
                filters=form.filters,
                strictness=form.strictness_value,
                sort=form.sort_value,
                place_words=form.place_words,
            )
        except SearchError as exc:
            error = str(exc)
        else:
            search_log_record(user=request.user, outcome=outcome, query=query, filters=form.filters)
    page = None
    if outcome is not None:
        # Image queries are not stored, so they cannot be paged by link: one long page.
        per_page = (len(outcome.hits) or 1) if image_query else RESULTS_PER_PAGE
        page = Paginator(outcome.hits, per_page).get_page(request.GET.get("page"))
    return render(
        request,
        "search/home.html",
        {
            "form": form,
            "image_form": form if image_query else None,
            "outcome": outcome,
            "page": page,
            "tiles": result_tiles(page.object_list, query=request.GET.get("q", "").strip())
            if page is not None
            else [],
            "error": error,
            "similar_to": similar_to,
            "image_query": image_query,
            "querystring": _querystring_without_page(request),
            "literal_querystring": _querystring_without_page(request, as_typed="1"),
            "filters_open": form.is_bound
            and any(form.data.get(name) for name in form.filter_names),
            # Called by the template only where it is shown: a count of a large library is
            # not free, and a page of results does not need it.
            "photo_count": photos_visible_to(request.user).count,
        },
    )


def _querystring_without_page(request, **changes: str) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    for name, value in changes.items():
        params[name] = value
    return params.urlencode()
