from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from search.forms import (
    DuplicateFilterForm,
    ImageSearchForm,
    PhotoDeleteForm,
    TextSearchForm,
    UploadForm,
)
from search.models import Photo
from search.selectors import (
    dashboard_stats,
    near_duplicate_groups,
    photo_list_for,
    photo_search_by_image,
    photo_search_by_text,
    photo_similar_to,
    photos_owned_by,
)
from search.services import photos_create_many, photos_delete
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
    """Originals and thumbnails, only ever to their owner (or staff); never a public path."""
    visible = Q(owner=request.user) if not request.user.is_staff else Q()
    photo = get_object_or_404(Photo.objects.filter(visible), pk=pk)
    if kind in ("thumbnail", "preview"):
        derived = photo.thumbnail if kind == "thumbnail" else photo.preview
        if not derived:
            raise Http404("Not made yet.")
        response = FileResponse(derived.open("rb"), content_type="image/jpeg")
    else:
        content_type = CONTENT_TYPES.get(photo.image_format, "application/octet-stream")
        response = FileResponse(
            photo.file.open("rb"),
            content_type=content_type,
            as_attachment=request.GET.get("download") == "1",
            filename=photo.original_filename,
        )
    response["Cache-Control"] = "private, max-age=3600"
    return response


@staff_member_required
@require_GET
def dashboard(request: HttpRequest) -> HttpResponse:
    return render(request, "search/dashboard.html", {"stats": dashboard_stats()})


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
