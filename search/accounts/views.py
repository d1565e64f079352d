"""The API tokens page."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from search.accounts.forms import ApiTokenForm
from search.accounts.selectors import api_tokens_for
from search.accounts.services import api_token_create, api_token_revoke


@login_required
@require_http_methods(["GET", "POST"])
def api_tokens(request: HttpRequest) -> HttpResponse:
    form = ApiTokenForm(request.POST or None)
    new_token = new_key = None
    if form.is_bound and form.is_valid():
        new_token, new_key = api_token_create(user=request.user, name=form.cleaned_data["name"])
        form = ApiTokenForm()
    response = render(
        request,
        "search/api_tokens.html",
        {
            "form": form,
            "tokens": api_tokens_for(user=request.user),
            "new_token": new_token,
            "new_key": new_key,
        },
    )
    # The only page that ever shows a token: no cache may keep a copy.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def api_token_delete(request: HttpRequest, pk: int) -> HttpResponse:
    if not api_token_revoke(user=request.user, token_id=pk):
        raise Http404("No such token.")
    messages.success(request, "Token revoked: programs using it can no longer sign in.")
    return redirect("search:api_tokens")
