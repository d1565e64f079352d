"""Album pages: list and create, one album, the owner's changes, adding photos."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from search.albums.forms import AddToAlbumForm, AlbumForm, AlbumShareForm, AlbumUnshareForm
from search.albums.selectors import album_photos, albums_visible_to
from search.albums.services import (
    AlbumError,
    album_add_photos,
    album_create,
    album_delete,
    album_remove_photos,
    album_rename,
    album_share,
    album_unshare,
)
from search.models import Album, Photo
from search.web.pages import RESULTS_PER_PAGE, ids_from, redirect_back


@login_required
def album_list(request: HttpRequest) -> HttpResponse:
    form = AlbumForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            album = album_create(owner=request.user, name=form.cleaned_data["name"])
        except AlbumError as exc:
            form.add_error("name", str(exc))
        else:
            messages.success(request, f"Album “{album.name}” created.")
            return redirect("search:album_detail", pk=album.pk)
    return render(
        request,
        "search/album_list.html",
        {"albums": albums_visible_to(request.user), "form": form},
    )


@login_required
@require_GET
def album_detail(request: HttpRequest, pk: int) -> HttpResponse:
    album = get_object_or_404(albums_visible_to(request.user), pk=pk)
    photos = album_photos(album).filter(status=Photo.Status.READY)
    return render(
        request,
        "search/album_detail.html",
        {
            "album": album,
            "page": Paginator(photos, RESULTS_PER_PAGE).get_page(request.GET.get("page")),
            "is_owner": album.owner_id == request.user.pk,
            "shared_with": album.shared_with.order_by("username"),
            "rename_form": AlbumForm(initial={"name": album.name}),
            "share_form": AlbumShareForm(),
        },
    )


@login_required
@require_POST
def album_edit(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    """The album owner's changes: rename, share, unshare, remove photos, delete."""
    album = get_object_or_404(Album, pk=pk, owner=request.user)
    try:
        if action == "rename":
            form = AlbumForm(request.POST)
            if form.is_valid():
                album_rename(album=album, name=form.cleaned_data["name"])
        elif action == "share":
            share_form = AlbumShareForm(request.POST)
            if share_form.is_valid():
                usernames = share_form.cleaned_data["usernames"]
                users = album_share(album=album, usernames=usernames)
                names = ", ".join(user.get_username() for user in users) or "nobody new"
                messages.success(request, f"Shared with {names}.")
        elif action == "unshare":
            unshare_form = AlbumUnshareForm(request.POST)
            if unshare_form.is_valid():
                album_unshare(album=album, usernames=[unshare_form.cleaned_data["username"]])
        elif action == "remove":
            album_remove_photos(album=album, photo_ids=ids_from(request.POST.getlist("photo")))
        elif action == "delete":
            album_delete(album=album)
            messages.success(request, f"Album “{album.name}” deleted; its photos are kept.")
            return redirect("search:album_list")
        else:
            raise Http404("No such action.")
    except AlbumError as exc:
        messages.error(request, str(exc))
    return redirect("search:album_detail", pk=album.pk)


@login_required
@require_POST
def album_add(request: HttpRequest) -> HttpResponse:
    """Add the posted photos (the user's own) to one of the user's albums."""
    own_albums = Album.objects.filter(owner_id=request.user.pk)
    form = AddToAlbumForm(request.POST, albums=own_albums)
    if not form.is_valid():
        raise Http404("No such album.")
    album = get_object_or_404(own_albums, pk=form.cleaned_data["album"])
    added = album_add_photos(album=album, photo_ids=ids_from(request.POST.getlist("photo")))
    messages.success(request, f"{added} photo(s) added to “{album.name}”.")
    return redirect_back(
        request, request.POST.get("next"), reverse("search:album_detail", args=[album.pk])
    )
