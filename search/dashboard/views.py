"""The staff dashboard and its buttons."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from search.dashboard.charts import bar_chart
from search.dashboard.forms import CancelSwitchForm, ModelSwitchForm, RetryReasonForm
from search.dashboard.selectors import (
    dashboard_stats,
    model_history,
    pipeline_figures,
    search_activity,
    search_analytics,
    service_versions,
    storage_figures,
)
from search.ingest.active_model import forget_active_spec
from search.ingest.model_switch import (
    ModelSwitchError,
    embed_missing,
    model_switch_cancel,
    model_switch_start,
    open_clip_model_names,
    photos_reembed_all,
)
from search.ingest.pipeline import (
    photos_delete_by_staff,
    photos_retry,
    pipeline_is_paused,
    pipeline_pause,
    pipeline_resume,
)
from search.ingest.selectors import switch_progress
from search.text.selectors import ocr_stats
from search.text.services import ocr_set_enabled
from search.web.pages import ids_from
from workers.active_engine import get_engine


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
            "ocr": ocr_stats(),
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
    elif action in ("ocr-off", "ocr-on"):
        ocr_set_enabled(enabled=action == "ocr-on")
        if action == "ocr-on" and not settings.MEDIASEARCH_OCR_ENABLED:
            messages.error(request, "MEDIASEARCH_OCR_ENABLED=0 keeps OCR off in this setup.")
        else:
            messages.success(
                request,
                "OCR turned on; photos not yet read are read in the background."
                if action == "ocr-on"
                else "OCR turned off; text already read stays searchable.",
            )
    elif action == "embed-missing":
        count = embed_missing()
        messages.success(request, f"{count} ready photo(s) lack a vector; they are being embedded.")
    elif action == "reembed-all":
        count = photos_reembed_all()
        messages.success(request, f"Re-embedding {count} photo(s); search keeps working.")
    elif action == "retry":
        count = photos_retry(photo_ids=ids_from(post.getlist("photo")))
        messages.success(request, f"{count} photo(s) queued again.")
    elif action == "retry-reason":
        reason_form = RetryReasonForm(post)
        if reason_form.is_valid():
            count = photos_retry(reason=reason_form.cleaned_data["reason"])
            messages.success(request, f"{count} photo(s) with that reason queued again.")
        else:
            messages.error(request, "No photo failed for that reason.")
    elif action == "delete":
        deleted = photos_delete_by_staff(photo_ids=ids_from(post.getlist("photo")))
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
        cancel_form = CancelSwitchForm(post)
        if cancel_form.is_valid():
            model_switch_cancel(model_pk=cancel_form.cleaned_data["model"])
            messages.success(request, "Switch cancelled; search never left the active model.")
        else:
            messages.error(request, "No such model switch.")
    else:
        raise Http404("No such action.")
    return redirect("search:dashboard")
