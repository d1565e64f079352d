from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from search.forms import ApiTokenForm, ImageSearchForm, TextSearchForm, UploadForm
from search.models import Photo
from search.selectors import (
    api_tokens_for,
    dashboard_stats,
    photo_list_for,
    photo_search_by_image,
    photo_search_by_text,
    photo_similar_to,
)
from search.services import api_token_create, api_token_revoke, photos_create_many

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


@login_required
@require_GET
def home(request: HttpRequest) -> HttpResponse:
    form = TextSearchForm(request.GET or None)
    hits = None
    if form.is_valid() and form.cleaned_data["q"].strip():
        hits = photo_search_by_text(user=request.user, text=form.cleaned_data["q"].strip())
    return _render_results(request, text_form=form, hits=hits)


@login_required
@require_POST
def search_by_image(request: HttpRequest) -> HttpResponse:
    form = ImageSearchForm(request.POST, request.FILES)
    hits = None
    if form.is_valid():
        hits = photo_search_by_image(user=request.user, image=form.cleaned_data["image"])
    return _render_results(request, image_form=form, hits=hits, query_kind="image")


@login_required
@require_GET
def photo_similar(request: HttpRequest, pk: int) -> HttpResponse:
    photo = get_object_or_404(Photo, pk=pk, owner=request.user)
    hits = photo_similar_to(user=request.user, photo=photo)
    return _render_results(request, hits=hits, similar_to=photo, query_kind="similar")


def _render_results(request, *, text_form=None, image_form=None, hits=None, **context):
    return render(
        request,
        "search/home.html",
        {
            "text_form": text_form or TextSearchForm(),
            "image_form": image_form or ImageSearchForm(),
            "hits": hits,
            "photo_count": Photo.objects.filter(owner=request.user).count(),
            **context,
        },
    )


@login_required
def upload(request: HttpRequest) -> HttpResponse:
    form = UploadForm(request.POST, request.FILES) if request.method == "POST" else UploadForm()
    if form.is_bound and form.is_valid():
        report = photos_create_many(owner=request.user, files=form.cleaned_data["photos"])
        if report.created:
            messages.success(request, f"{len(report.created)} photo(s) uploaded and queued.")
        for photo in report.duplicates:
            messages.info(request, f"{photo.original_filename}: already in your library.")
        for reason in report.rejected:
            messages.error(request, reason)
        return redirect("search:photo_list")
    return render(request, "search/upload.html", {"form": form})


@login_required
@require_GET
def photo_list(request: HttpRequest) -> HttpResponse:
    photos = photo_list_for(user=request.user)
    page = Paginator(photos, 48).get_page(request.GET.get("page"))
    in_flight = photos.filter(status__in=[Photo.Status.PENDING, Photo.Status.PROCESSING]).exists()
    return render(request, "search/photo_list.html", {"page": page, "in_flight": in_flight})


@login_required
@require_GET
def photo_file(request: HttpRequest, pk: int, kind: str) -> FileResponse:
    """Originals and thumbnails, only ever to their owner (or staff); never a public path."""
    visible = Q(owner=request.user) if not request.user.is_staff else Q()
    photo = get_object_or_404(Photo.objects.filter(visible), pk=pk)
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
            as_attachment=download,
            filename=photo.original_filename,
        )
    response["Cache-Control"] = "private, max-age=3600"
    return response


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "search/dashboard.html", {"stats": dashboard_stats()})


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
