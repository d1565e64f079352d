from axes import admin as axes_admin
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.core.exceptions import BadRequest
from django.db.models import Prefetch

from search.models import Album, Embedding, Photo, PhotoTag, SearchLog


class ModelAdmin(admin.ModelAdmin):
    """The admin's lists put their query parameters (filters, search, date drill-down) into SQL
    unchecked: a NUL, which PostgreSQL text cannot hold, failed there as a 500."""

    def changelist_view(self, request, extra_context=None):
        if any("\x00" in key + "".join(values) for key, values in request.GET.lists()):
            raise BadRequest("Null characters are not allowed in a query.")
        return super().changelist_view(request, extra_context)


class EmbeddingInline(admin.TabularInline):
    model = Embedding
    fields = ("model_id", "created_at")
    readonly_fields = fields
    extra = 0
    can_delete = False


class PhotoTagInline(admin.TabularInline):
    model = PhotoTag
    fields = ("name", "score", "model_id")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # tags come from the model (retag_photos), not from hand edits


@admin.register(Photo)
class PhotoAdmin(ModelAdmin):
    list_display = ("original_filename", "owner", "status", "models", "attempts", "created_at")
    list_filter = ("status", "image_format", "created_at")
    list_select_related = ("owner",)
    search_fields = ("original_filename", "sha256", "owner__username")
    readonly_fields = (
        "sha256", "size_bytes", "image_format", "width", "height", "attempts", "queued_at",
        "processing_started_at", "processed_at", "created_at", "updated_at",
    )  # fmt: skip
    inlines = [EmbeddingInline, PhotoTagInline]
    date_hierarchy = "created_at"

    def get_queryset(self, request):
        # Only the model ids: the vectors themselves are large and not shown.
        ids_only = Embedding.objects.only("id", "photo_id", "model_id")
        return super().get_queryset(request).prefetch_related(Prefetch("embeddings", ids_only))

    @admin.display(description="Models")
    def models(self, photo: Photo) -> str:
        return ", ".join(sorted(embedding.model_id for embedding in photo.embeddings.all())) or "—"


@admin.register(Embedding)
class EmbeddingAdmin(ModelAdmin):
    list_display = ("photo", "model_id", "created_at")
    list_filter = ("model_id",)
    list_select_related = ("photo",)
    fields = ("photo", "model_id", "created_at")
    readonly_fields = fields


@admin.register(Album)
class AlbumAdmin(ModelAdmin):
    list_display = ("name", "owner", "created_at")
    list_select_related = ("owner",)
    search_fields = ("name", "owner__username")
    filter_horizontal = ("shared_with",)
    raw_id_fields = ("photos",)


@admin.register(SearchLog)
class SearchLogAdmin(ModelAdmin):
    list_display = (
        "created_at", "user", "kind", "query", "result_count", "top_score", "latency_ms",
    )  # fmt: skip
    list_filter = ("kind", "via_api", "created_at")
    list_select_related = ("user",)
    search_fields = ("query", "user__username")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


# Axes's own admin classes (AXES_ENABLE_ADMIN is off), with the guard above.
@admin.register(AccessAttempt)
class AccessAttemptAdmin(ModelAdmin, axes_admin.AccessAttemptAdmin):
    pass


@admin.register(AccessLog)
class AccessLogAdmin(ModelAdmin, axes_admin.AccessLogAdmin):
    pass


@admin.register(AccessFailureLog)
class AccessFailureLogAdmin(ModelAdmin, axes_admin.AccessFailureLogAdmin):
    pass
