from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django.views.decorators.vary import vary_on_headers

from search.charts import bar_chart
from search.dashboard import (
    model_history,
    pipeline_figures,
    search_analytics,
    service_versions,
    storage_figures,
)
from search.forms import (
    AddToAlbumForm,
    AlbumForm,
    AlbumShareForm,
    ApiTokenForm,
    DuplicateFilterForm,
    ImageSearchForm,
    ModelSwitchForm,
    PhotoDeleteForm,
    SearchForm,
    UploadForm,
)
from search.model_switch import (
    ModelSwitchError,
    embed_missing,
    forget_active_spec,
    model_switch_cancel,
    model_switch_start,
    open_clip_model_names,
    photos_reembed_all,
    switch_progress,
)
from search.models import Album, Photo
from search.pipeline import (
    photos_delete_by_staff,
    photos_retry,
    pipeline_is_paused,
    pipeline_pause,
    pipeline_resume,
)
from search.query import Strictness
from search.selectors import (
    PhotoState,
    SearchError,
    SearchHit,
    albums_visible_to,
    api_tokens_for,
    dashboard_stats,
    near_duplicate_groups,
    photo_list_for,
    photo_search,
    photo_states_for,
    photo_tag_names_for,
    photo_tags_for,
    photos_owned_by,
    photos_visible_to,
    search_activity,
    search_choices_for,
)
from search.services import (
    AlbumError,
    UploadReport,
    album_add_photos,
    album_create,
    album_delete,
    album_remove_photos,
    album_rename,
    album_share,
    album_unshare,
    api_token_create,
    api_token_revoke,
    photos_create_many,
    photos_delete,
    search_log_record,
    too_big_reason,
)
from workers.embedding.active import get_engine

CONTENT_TYPES = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "TIFF": "image/tiff",
    "BMP": "image/bmp",
    "HEIF": "image/heic",
    "AVIF": "image/avif",
}


RESULTS_PER_PAGE = 60
# The upload page asks for the state of at most this many photos per request.
MAX_STATUS_IDS = 200


@dataclass(frozen=True)
class ResultTile:
    """A search hit as a grid tile shows it."""

    photo: Photo
    score: float
    alt: str  # the photo's most probable tags, else its file name
    detail_url: str
    thumbnail_url: str
    similar_url: str


def result_tiles(hits: Sequence[SearchHit]) -> list[ResultTile]:
    """Tiles for ``hits``, their tags fetched in one query under the active model."""
    tags = photo_tag_names_for(
        photo_ids=[hit.photo.pk for hit in hits], model_id=get_engine().model_id
    )
    # Three URLs a tile, sixty tiles a page: resolving each was a fifth of a search's time.
    detail, thumbnail, similar = (
        _photo_url_maker(name)
        for name in ("search:photo_detail", "search:photo_thumbnail", "search:photo_similar")
    )
    return [
        ResultTile(
            photo=hit.photo,
            score=hit.score,
            alt=", ".join(tags.get(hit.photo.pk, ())) or hit.photo.original_filename,
            detail_url=detail(hit.photo.pk),
            thumbnail_url=thumbnail(hit.photo.pk),
            similar_url=similar(hit.photo.pk),
        )
        for hit in hits
    ]


def _photo_url_maker(name: str) -> Callable[[int], str]:
    """``lambda pk: reverse(name, args=[pk])`` for a URL whose only argument is a photo id,
    resolved once."""
    marker = 918273645  # stands for the id; the rest of the path is fixed text
    prefix, suffix = reverse(name, args=[marker]).split(str(marker))
    return lambda pk: f"{prefix}{int(pk)}{suffix}"


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
            "tiles": result_tiles(page.object_list) if page is not None else [],
            "error": error,
            "similar_to": similar_to,
            "image_query": image_query,
            "querystring": _querystring_without_page(request),
            "filters_open": form.is_bound
            and any(form.data.get(name) for name in form.filter_names),
            # Called by the template only where it is shown: a count of a large library is
            # not free, and a page of results does not need it.
            "photo_count": photos_visible_to(request.user).count,
        },
    )


def _querystring_without_page(request) -> str:
    params = request.GET.copy()
    params.pop("page", None)
    return params.urlencode()


@login_required
@require_GET
def photo_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """A photo's page: preview, metadata, tags, albums and similar photos."""
    photo = get_object_or_404(photos_visible_to(request.user).select_related("owner"), pk=pk)
    model_id = get_engine().model_id
    similar = None
    if photo.status == Photo.Status.READY:
        try:
            similar = photo_search(
                user=request.user, similar_to=photo, strictness=Strictness.LOOSE
            ).hits[:12]
        except SearchError:
            similar = None
    own_albums = Album.objects.filter(owner=request.user) if photo.owner == request.user else []
    return render(
        request,
        "search/photo_detail.html",
        {
            "photo": photo,
            "tags": photo_tags_for(photo=photo, model_id=model_id),
            "albums": albums_visible_to(request.user).filter(photos=photo),
            "similar": result_tiles(similar) if similar is not None else None,
            "add_form": AddToAlbumForm(albums=own_albums) if own_albums else None,
            "is_owner": photo.owner == request.user,
        },
    )


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
    photos = album.photos.filter(status=Photo.Status.READY).order_by("-taken_at", "-id")
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
            form = AlbumShareForm(request.POST)
            if form.is_valid():
                users = album_share(album=album, usernames=form.cleaned_data["usernames"])
                names = ", ".join(user.get_username() for user in users) or "nobody new"
                messages.success(request, f"Shared with {names}.")
        elif action == "unshare":
            album_unshare(album=album, usernames=request.POST.getlist("username"))
        elif action == "remove":
            album_remove_photos(album=album, photo_ids=_ids(request.POST.getlist("photo")))
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
    own_albums = Album.objects.filter(owner=request.user)
    form = AddToAlbumForm(request.POST, albums=own_albums)
    if not form.is_valid():
        raise Http404("No such album.")
    album = get_object_or_404(own_albums, pk=form.cleaned_data["album"])
    added = album_add_photos(album=album, photo_ids=_ids(request.POST.getlist("photo")))
    messages.success(request, f"{added} photo(s) added to “{album.name}”.")
    return redirect(request.POST.get("next") or reverse("search:album_detail", args=[album.pk]))


def _ids(values: list[str]) -> list[int]:
    # Plain ASCII digits that fit a bigint; anything else is no id of ours.
    return [
        int(value) for value in values if value.isascii() and value.isdigit() and len(value) < 19
    ]


def _wants_json(request: HttpRequest) -> bool:
    # The upload page's script asks for JSON; a plain form post (no script) prefers HTML.
    return request.get_preferred_type(["text/html", "application/json"]) == "application/json"


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("Accept")
def upload(request: HttpRequest) -> HttpResponse:
    """The upload form. A plain post stores the files and goes to the photo list; the page's
    script sends each file on its own and asks for JSON: what became of it."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    wants_json = form.is_bound and _wants_json(request)
    if form.is_bound and form.is_valid():
        report = photos_create_many(owner=request.user, files=form.cleaned_data["photos"])
        if wants_json:
            return _upload_answer(report)
        if report.created:
            messages.success(request, f"{len(report.created)} photo(s) uploaded and queued.")
        for photo in report.duplicates:
            messages.info(request, f"{photo.original_filename}: already in your library.")
        for reason in report.rejected:
            messages.error(request, reason)
        return redirect("search:photo_list")
    if wants_json:
        errors = [error for field_errors in form.errors.values() for error in field_errors]
        return JsonResponse({"detail": " ".join(errors)}, status=400)
    return render(
        request,
        "search/upload.html",
        {
            "form": form,
            "max_bytes": settings.MEDIASEARCH_MAX_UPLOAD_BYTES,
            "max_mb": settings.MEDIASEARCH_MAX_UPLOAD_BYTES // (1024 * 1024),
            "too_big": too_big_reason(),
        },
    )


def _upload_answer(report: UploadReport) -> JsonResponse:
    return JsonResponse(report.summary(lambda photo: _state_json(PhotoState.of(photo))))


@login_required
@require_GET
@never_cache
def photo_status(request: HttpRequest) -> JsonResponse:
    """``?id=1&id=2``: where processing stands for those of the user's own photos; any other id
    is left out of the answer, as if it did not exist."""
    ids = _ids(request.GET.getlist("id"))
    if len(ids) > MAX_STATUS_IDS:
        return JsonResponse(
            {"detail": f"Ask for at most {MAX_STATUS_IDS} photos at a time."}, status=400
        )
    states = photo_states_for(user=request.user, photo_ids=ids)
    return JsonResponse({"photos": [_state_json(state) for state in states]})


def _state_json(state: PhotoState) -> dict:
    return {
        "id": state.id,
        "filename": state.filename,
        "status": state.status,
        "failure_reason": state.failure_reason,
        "url": reverse("search:photo_detail", args=[state.id]),
        "thumbnail": reverse("search:photo_thumbnail", args=[state.id])
        if state.has_thumbnail
        else None,
    }


@login_required
@require_GET
def photo_list(request: HttpRequest) -> HttpResponse:
    photos = photo_list_for(user=request.user)
    page = Paginator(photos, 48).get_page(request.GET.get("page"))
    in_flight = photos.filter(status__in=[Photo.Status.PENDING, Photo.Status.PROCESSING]).exists()
    return render(request, "search/photo_list.html", {"page": page, "in_flight": in_flight})


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


@login_required
@require_http_methods(["GET", "POST"])
def photos_delete_confirm(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation (changes nothing); POST deletes. Only the user's own photos:
    any other id is a 404, and then nothing is deleted."""
    form = PhotoDeleteForm(request.POST if request.method == "POST" else request.GET)
    back = reverse("search:duplicates")
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(error))
        return redirect(back)
    if url_has_allowed_host_and_scheme(
        form.cleaned_data["next"], allowed_hosts={request.get_host()}
    ):
        back = form.cleaned_data["next"] or back
    photos = photos_owned_by(user=request.user, photo_ids=form.cleaned_data["photo"])
    keep = form.cleaned_data["keep"]
    kept = photos_owned_by(user=request.user, photo_ids=[keep] if keep is not None else [])
    if photos is None or kept is None:
        raise Http404("No such photo.")
    if request.method == "GET":
        return render(
            request,
            "search/photos_delete.html",
            {"form": form, "photos": photos, "kept": kept[0] if kept else None, "back": back},
        )
    deleted = photos_delete(owner=request.user, photo_ids=[photo.pk for photo in photos])
    text = f"Deleted {len(deleted)} photo{'s' if len(deleted) != 1 else ''}"
    messages.success(request, text + (f"; kept {kept[0].original_filename}." if kept else "."))
    return redirect(back)


@login_required
@require_GET
def photo_file(request: HttpRequest, pk: int, kind: str) -> FileResponse:
    """Originals and thumbnails, only to those who may see the photo; never a public path."""
    photo = get_object_or_404(photos_visible_to(request.user), pk=pk)
    return photo_file_response(photo=photo, kind=kind, download=request.GET.get("download") == "1")


def photo_file_response(*, photo: Photo, kind: str, download: bool = False) -> FileResponse:
    """Stream the original, thumbnail or preview of a photo the caller may see (the web pages
    and the JSON API both serve files through this). Raises Http404 for a derived file that
    the worker has not made yet."""
    if kind in ("thumbnail", "preview"):
        derived = photo.thumbnail if kind == "thumbnail" else photo.preview
        if not derived:
            raise Http404(f"The {kind} is not made yet.")
        stem = photo.original_filename.rsplit(".", 1)[0]
        response = FileResponse(
            derived.open("rb"), content_type="image/jpeg", filename=f"{stem}-{kind}.jpg"
        )
    else:
        content_type = CONTENT_TYPES.get(photo.image_format, "application/octet-stream")
        response = FileResponse(
            photo.file.open("rb"),
            content_type=content_type,
            # A format outside the allowlist is never shown inline, only downloaded.
            as_attachment=download or content_type == "application/octet-stream",
            filename=photo.original_filename,
        )
    response["Cache-Control"] = "private, max-age=3600"
    response["Content-Security-Policy"] = settings.MEDIASEARCH_CSP_FILES
    return response


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    forget_active_spec()  # the model shown must be the database's word, not this process's cache
    pipeline = pipeline_figures()
    analytics = search_analytics()
    return render(
        request,
        "search/dashboard.html",
        {
            "stats": dashboard_stats(),
            "searches": search_activity(),
            "pipeline": pipeline,
            "paused": pipeline_is_paused(),
            "throughput_chart": bar_chart(
                [(b.start, b.value) for b in pipeline.throughput],
                title="Photos embedded per minute, last 24 hours (30-minute averages)",
                unit="photos/min",
            ),
            "analytics": analytics,
            "queries_chart": bar_chart(
                [(b.start, b.value) for b in analytics.per_hour],
                title="Searches per hour, last 24 hours",
                unit="searches",
            ),
            "storage": storage_figures(),
            "versions": service_versions(),
            "engine": get_engine(),
            "switch": switch_progress(),
            "models": model_history(),
            "switch_form": ModelSwitchForm(),
            "model_names": open_clip_model_names(),
        },
    )


@staff_member_required
@require_POST
def dashboard_action(request: HttpRequest, action: str) -> HttpResponse:
    """The dashboard's buttons: each calls one service and says what it did."""
    post = request.POST
    if action == "pause":
        pipeline_pause()
        messages.success(request, "Ingestion paused: workers finish what they hold, then wait.")
    elif action == "resume":
        count = pipeline_resume()
        messages.success(request, f"Ingestion resumed; {count} waiting photo(s) sent again.")
    elif action == "embed-missing":
        count = embed_missing()
        messages.success(request, f"{count} ready photo(s) lack a vector; they are being embedded.")
    elif action == "reembed-all":
        count = photos_reembed_all()
        messages.success(request, f"Re-embedding {count} photo(s); search keeps working.")
    elif action == "retry":
        count = photos_retry(photo_ids=_ids(post.getlist("photo")))
        messages.success(request, f"{count} photo(s) queued again.")
    elif action == "retry-reason":
        count = photos_retry(reason=post.get("reason", ""))
        messages.success(request, f"{count} photo(s) with that reason queued again.")
    elif action == "delete":
        deleted = photos_delete_by_staff(photo_ids=_ids(post.getlist("photo")))
        messages.success(request, f"{len(deleted)} photo(s) deleted.")
    elif action == "switch":
        form = ModelSwitchForm(post)
        if form.is_valid():
            try:
                model_switch_start(**form.cleaned_data)
            except ModelSwitchError as exc:
                messages.error(request, str(exc))
            else:
                messages.success(request, "Loading the new model; its vectors follow.")
        else:
            messages.error(request, "Choose a model.")
    elif action == "cancel-switch":
        model_switch_cancel(model_pk=int(post.get("model", 0) or 0))
        messages.success(request, "Switch cancelled; search never left the active model.")
    else:
        raise Http404("No such action.")
    return redirect("search:dashboard")


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
