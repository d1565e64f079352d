"""Pages of the photos concern: upload, processing status, the photo list and page, files,
deletion."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_safe
from django.views.decorators.vary import vary_on_headers

from search.albums.forms import AddToAlbumForm
from search.albums.selectors import albums_visible_to
from search.api.schemas import photo_state_out
from search.models import Album, Photo
from search.photos.files import photo_file_response
from search.photos.forms import PhotoDeleteForm, UploadForm
from search.photos.selectors import (
    PhotoState,
    photo_list_for,
    photo_states_for,
    photos_owned_by,
    photos_visible_to,
)
from search.photos.services import UploadReport, photos_create_many, photos_delete, too_big_reason
from search.retrieval.query import Strictness
from search.retrieval.selectors import SearchError, photo_search, query_moments
from search.retrieval.tiles import clock, result_tiles
from search.tags.selectors import photo_tags_for
from search.text.selectors import photo_text_view
from search.web.pages import ids_from, prefers_json, redirect_back
from workers.active_engine import get_engine
from workers.embedding.images import ACCEPTED_FORMATS_TEXT
from workers.embedding.video import ACCEPTED_VIDEO_FORMATS_TEXT

# The upload page asks for the state of at most this many photos per request.
MAX_STATUS_IDS = 200


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
    own_albums = (
        Album.objects.filter(owner_id=request.user.pk) if photo.owner == request.user else []
    )
    video = photo.kind == Photo.Kind.VIDEO
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
            "photo_text": photo_text_view(
                photo=photo, query=request.GET.get("q", "").strip()[:500].replace("\x00", "")
            ),
            **(_video_context(request, photo) if video else {}),
        },
    )


def _video_context(request: HttpRequest, video: Photo) -> dict:
    """Where the player starts (``?t=`` seconds, from a search result) and, for the query the
    page was opened from (``?q=``), the video's moments that match it best."""
    try:
        start = max(0.0, float(request.GET.get("t", "0")))
    except ValueError:
        start = 0.0
    if start != start or start > 10**7:  # NaN, or no video is that long
        start = 0.0
    query = request.GET.get("q", "").strip()[:500]
    moments = []
    if query and video.status == Photo.Status.READY and "\x00" not in query:
        moments = [
            {
                "seconds": moment.time_ms / 1000,
                "clock": clock(moment.time_ms),
                "score": moment.score,
            }
            for moment in query_moments(video=video, text=query)
        ]
    return {
        "video": True,
        "start": start,
        "query": query,
        "moments": moments,
        "duration": clock(video.duration_ms or 0),
    }


@login_required
@require_http_methods(["GET", "POST"])
@vary_on_headers("Accept")
def upload(request: HttpRequest) -> HttpResponse:
    """The upload form. A plain post stores the files and goes to the photo list; the page's
    script sends each file on its own and asks for JSON: what became of it."""
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    wants_json = form.is_bound and prefers_json(request)
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
        errors = [str(error) for field_errors in form.errors.values() for error in field_errors]
        return JsonResponse({"detail": " ".join(errors)}, status=400)
    return render(
        request,
        "search/upload.html",
        {
            "form": form,
            "max_bytes": settings.MEDIASEARCH_MAX_UPLOAD_BYTES,
            "max_video_bytes": settings.MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES,
            "too_big_video": too_big_reason("video"),
            "max_mb": settings.MEDIASEARCH_MAX_UPLOAD_BYTES // (1024 * 1024),
            "accepted_formats": ACCEPTED_FORMATS_TEXT,
            "accepted_video_formats": ACCEPTED_VIDEO_FORMATS_TEXT,
            "max_video_mb": settings.MEDIASEARCH_MAX_VIDEO_UPLOAD_BYTES // (1024 * 1024),
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
    ids = ids_from(request.GET.getlist("id"))
    if len(ids) > MAX_STATUS_IDS:
        return JsonResponse(
            {"detail": f"Ask for at most {MAX_STATUS_IDS} photos at a time."}, status=400
        )
    states = photo_states_for(user=request.user, photo_ids=ids)
    return JsonResponse({"photos": [_state_json(state) for state in states]})


def _state_json(state: PhotoState) -> dict:
    # The API's photo core, and the two links the page's script follows.
    return {
        **photo_state_out(state),
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
@require_http_methods(["GET", "POST"])
def photos_delete_confirm(request: HttpRequest) -> HttpResponse:
    """GET asks for confirmation (changes nothing); POST deletes. Only the user's own photos:
    any other id is a 404, and then nothing is deleted."""
    form = PhotoDeleteForm(request.POST if request.method == "POST" else request.GET)
    duplicates = reverse("search:duplicates")
    if not form.is_valid():
        for error in form.errors.values():
            messages.error(request, " ".join(str(message) for message in error))
        return redirect(duplicates)
    back = redirect_back(request, form.cleaned_data["next"], duplicates)
    photos = photos_owned_by(user=request.user, photo_ids=form.cleaned_data["photo"])
    keep = form.cleaned_data["keep"]
    kept = photos_owned_by(user=request.user, photo_ids=[keep] if keep is not None else [])
    if photos is None or kept is None:
        raise Http404("No such photo.")
    if request.method == "GET":
        return render(
            request,
            "search/photos_delete.html",
            {
                "form": form,
                "photos": photos,
                "kept": kept[0] if kept else None,
                "back": back.url,
            },
        )
    deleted = photos_delete(owner=request.user, photo_ids=[photo.pk for photo in photos])
    text = f"Deleted {len(deleted)} photo{'s' if len(deleted) != 1 else ''}"
    messages.success(request, text + (f"; kept {kept[0].original_filename}." if kept else "."))
    return back


@login_required
@require_safe  # HEAD too: a player asks for the size and Accept-Ranges before it seeks
def photo_file(request: HttpRequest, pk: int, kind: str) -> HttpResponseBase:
    """Originals and thumbnails, only to those who may see the photo; never a public path."""
    photo = get_object_or_404(photos_visible_to(request.user), pk=pk)
    return photo_file_response(
        request, photo=photo, kind=kind, download=request.GET.get("download") == "1"
    )
