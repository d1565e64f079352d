"""The staff dashboard: figures, pipeline controls, failures, and the model switch."""

import time

import pytest
from django.urls import reverse

from search.ingest.active_model import ACTIVE_SPEC_TTL, forget_active_spec
from search.ingest.model_switch import (
    RETIRE_MARGIN,
    ModelSwitchError,
    model_backfill,
    model_prepare,
    model_retire,
    model_switch_start,
)
from search.ingest.pipeline import photos_retry, pipeline_pause, pipeline_resume
from search.ingest.selectors import switch_progress
from search.models import ClipModel, Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.query import Strictness
from search.retrieval.selectors import photo_search
from search.retrieval.vector_index import index_name
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db
INCOMING = ("MediaSearch-Demo", "")  # the demo architecture, randomly initialised: other weights


def add_photo(owner, color="red", shape="circle", embed=True) -> Photo:
    """Upload a photo and, unless ``embed`` is false, let the pipeline take what is waiting."""
    data = encode(make_image(color=color, shape=shape))
    photo = photo_create(owner=owner, file=upload_file(f"{color}-{shape}.jpg", data)).photo
    if embed:
        embed_waiting()
    photo.refresh_from_db()
    return photo


def embed(*photos: Photo) -> None:
    """Embed uploaded photos together, as a worker does; each must be ready."""
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    for photo in photos:
        photo.refresh_from_db()


def test_dashboard_shows_pipeline_storage_versions_and_charts(client, staff, alice):
    add_photo(alice)
    client.force_login(staff)
    page = client.get(reverse("search:dashboard"))
    html = page.content.decode()
    assert page.status_code == 200
    for text in ("Messages queued", "Oldest pending", "PostgreSQL", "pgvector", "Redis"):
        assert text in html, text
    assert html.count('<svg class="chart"') == 2
    photo = Photo.objects.get()
    assert page.context["storage"].originals_bytes == photo.size_bytes
    assert page.context["storage"].derived_bytes == photo.derived_bytes
    assert photo.derived_bytes == photo.thumbnail.size + photo.preview.size > 0
    assert page.context["pipeline"].embedded_last_hour == 1


def test_pausing_stops_claims_and_resuming_sends_every_waiting_photo(
    alice, django_capture_on_commit_callbacks
):
    pipeline_pause()
    photo = add_photo(alice)  # the worker's attempt comes while paused
    assert photo.status == "pending" and photo.attempts == 0

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        assert pipeline_resume() == 1
    assert len(callbacks) == 1  # one message per waiting photo, after the commit
    embed(photo)
    assert photo.status == "ready"


def test_failures_are_retried_one_by_one_or_by_reason_and_deleted(client, staff, alice, bob):
    photos = [add_photo(alice, color=c, embed=False) for c in ("red", "blue", "green")]
    others = add_photo(bob, color="white", embed=False)
    embed(*photos, others)
    Photo.objects.filter(pk__in=[p.pk for p in photos[:2]]).update(
        status="failed", failure_reason="disk hiccup", attempts=5
    )
    Photo.objects.filter(pk=photos[2].pk).update(status="failed", failure_reason="corrupt")
    Photo.objects.filter(pk=others.pk).update(status="failed", failure_reason="corrupt")
    client.force_login(staff)

    client.post(
        reverse("search:dashboard_action", args=["retry-reason"]), {"reason": "disk hiccup"}
    )
    retried = Photo.objects.filter(pk__in=[p.pk for p in photos[:2]])
    assert {(p.status, p.attempts, p.failure_reason) for p in retried} == {("pending", 0, "")}
    assert Photo.objects.filter(status="failed").count() == 2

    client.post(reverse("search:dashboard_action", args=["retry"]), {"photo": photos[2].pk})
    assert Photo.objects.get(pk=photos[2].pk).status == "pending"

    client.post(reverse("search:dashboard_action", args=["delete"]), {"photo": others.pk})
    assert not Photo.objects.filter(pk=others.pk).exists()
    assert photos_retry(photo_ids=[photos[0].pk]) == 0  # only failed photos are retried


@pytest.mark.parametrize(
    ("action", "data", "message"),
    [
        ("retry-reason", {"reason": "disk\x00hiccup"}, "No photo failed for that reason."),
        ("cancel-switch", {"model": "abc"}, "No such model switch."),
        ("cancel-switch", {}, "No such model switch."),
    ],
)
def test_buttons_refuse_values_they_cannot_use(client, staff, alice, action, data, message):
    failed = add_photo(alice)
    Photo.objects.filter(pk=failed.pk).update(status="failed", failure_reason="disk hiccup")
    models = list(ClipModel.objects.values_list("pk", "state"))
    client.force_login(staff)

    response = client.post(reverse("search:dashboard_action", args=[action]), data, follow=True)

    assert response.redirect_chain == [(reverse("search:dashboard"), 302)]
    assert [str(m) for m in response.context["messages"]] == [message]
    assert Photo.objects.get(pk=failed.pk).status == "failed"
    assert list(ClipModel.objects.values_list("pk", "state")) == models


def test_dashboard_actions_are_for_staff_only(client, alice):
    add_photo(alice)
    client.force_login(alice)
    for action in ("pause", "retry", "delete", "switch", "reembed-all"):
        response = client.post(reverse("search:dashboard_action", args=[action]), {"photo": 1})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert Photo.objects.count() == 1


def test_a_model_switch_builds_beside_the_active_model_then_takes_over(alice, staff):
    photos = [
        add_photo(alice, color=c, shape=s, embed=False)
        for c, s in [("red", "circle"), ("blue", "square")]
    ]
    embed(*photos)
    old = get_engine()

    incoming = model_switch_start(name=INCOMING[0], pretrained=INCOMING[1])
    active_row = ClipModel.objects.get(state="active")
    assert active_row.model_id == old.model_id
    with pytest.raises(ModelSwitchError, match="already running"):
        model_switch_start(name=INCOMING[0], pretrained="")

    model_prepare(model_pk=incoming.pk)
    incoming.refresh_from_db()
    assert incoming.state == "building" and incoming.model_id == "MediaSearch-Demo/random-0"
    assert model_backfill(model_pk=incoming.pk, batch_size=1) == 1
    # Half built: search still answers from the active model's vectors.
    progress = switch_progress()
    assert (progress.done, progress.total) == (1, 2)
    forget_active_spec()
    assert get_engine().model_id == old.model_id
    assert len(photo_search(user=alice, text="a red circle", strictness=Strictness.ALL).hits) == 2

    late = add_photo(alice, color="green", shape="triangle")  # arrives during the switch
    while model_backfill(model_pk=incoming.pk, batch_size=1):
        pass
    model_backfill(model_pk=incoming.pk)  # nothing left: finishes the switch
    incoming.refresh_from_db()
    assert incoming.state == "active"
    forget_active_spec()
    assert get_engine().model_id == incoming.model_id
    hits = photo_search(user=alice, text="a red circle", strictness=Strictness.ALL).hits
    assert {hit.photo.pk for hit in hits} == {p.pk for p in photos} | {late.pk}

    active_row.refresh_from_db()
    assert active_row.state == "retiring"
    assert model_retire(model_pk=active_row.pk) == 0  # processes may still search the old one
    time.sleep(ACTIVE_SPEC_TTL + RETIRE_MARGIN)
    assert model_retire(model_pk=active_row.pk) == 3
    active_row.refresh_from_db()
    assert active_row.state == "retired"
    assert set(Embedding.objects.values_list("model_id", flat=True)) == {incoming.model_id}
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [index_name(old.model_id)])
        assert cursor.fetchone()[0] is None  # the old model's index is gone


def test_a_model_that_cannot_be_loaded_fails_the_switch_and_changes_nothing(
    alice, staff, settings, tmp_path
):
    add_photo(alice)
    settings.MEDIASEARCH_MODELS_DIR = str(tmp_path)
    (tmp_path / "weights.pt").write_bytes(b"not a checkpoint")
    incoming = model_switch_start(name="MediaSearch-Demo", pretrained="weights.pt")
    model_prepare(model_pk=incoming.pk)
    incoming.refresh_from_db()
    assert (
        incoming.state == "failed" and "weights.pt is not a checkpoint" in incoming.failure_reason
    )
    assert ClipModel.objects.get(state="active").model_id == get_engine().model_id
    assert switch_progress() is None


@pytest.mark.parametrize(
    ("name", "pretrained", "reason"),
    [
        ("MediaSearch-Demo", "/etc/hostname", "only from the models directory"),
        ("ViT-B-32", "made_up_tag", "unknown pretrained tag 'made_up_tag' for ViT-B-32; known"),
    ],
)
def test_weights_that_may_not_be_loaded_are_refused_at_once(
    alice, settings, tmp_path, name, pretrained, reason
):
    settings.MEDIASEARCH_MODELS_DIR = str(tmp_path)
    with pytest.raises(ModelSwitchError, match=reason):
        model_switch_start(name=name, pretrained=pretrained)
    assert not ClipModel.objects.exists()


def test_unknown_models_and_the_current_model_are_refused(alice):
    with pytest.raises(ModelSwitchError, match="knows no model"):
        model_switch_start(name="NoSuchNet", pretrained="")
    current = get_engine().spec
    with pytest.raises(ModelSwitchError, match="in use already"):
        model_switch_start(name=current.name, pretrained=current.pretrained)


def test_the_dashboard_shows_the_video_queue_and_the_videos_being_processed(
    client, staff, alice, settings, django_capture_on_commit_callbacks
):
    import io

    import redis
    from django.utils import timezone

    from search.photos.services import photo_create
    from tests.conftest import upload_file
    from tests.search.ingest.test_videos import STORY
    from workers.embedding.demo.videos import render_video

    out = io.BytesIO()
    render_video(out, STORY)
    redis.Redis.from_url(settings.REDIS_URL).delete(settings.VIDEO_QUEUE)
    with django_capture_on_commit_callbacks(execute=True):
        video = photo_create(owner=alice, file=upload_file("long.mp4", out.getvalue())).photo
    Photo.objects.filter(pk=video.pk).update(
        status="processing",
        duration_ms=3_723_000,
        progress_ms=930_750,
        attempts=2,
        processing_started_at=timezone.now(),
    )
    client.force_login(staff)

    page = client.get(reverse("search:dashboard"))

    assert page.context["pipeline"].video_queue_depth == 1  # the upload's message, on its queue
    html = page.content.decode()
    assert "Videos being processed" in html
    assert "long.mp4</a> (1:02:03 long): started" in html and "attempt 2" in html
    assert "decoded 15:30 of 1:02:03" in html and 'value="25"' in html


def test_the_dashboard_shows_each_queue_of_the_table_with_its_depth(
    client, staff, alice, settings, queued, django_capture_on_commit_callbacks
):
    from django.core.management import call_command

    add_photo(alice)  # embedded here (its messages are not sent: no commit in this test)
    with django_capture_on_commit_callbacks(execute=True):
        add_photo(alice, color="blue", embed=False)  # waits on the embedding queue
        call_command("retag_photos", "--queue")  # on the maintenance queue
    client.force_login(staff)

    page = client.get(reverse("search:dashboard"))

    queues = page.context["pipeline"].queues
    assert [q.name for q in queues] == list(settings.MEDIASEARCH_QUEUES)
    depths = {q.name: q.depth for q in queues}
    assert depths == {
        settings.EMBEDDING_QUEUE: 1,
        settings.VIDEO_QUEUE: 0,
        settings.MAINTENANCE_QUEUE: 1,
        settings.OCR_QUEUE: 0,  # OCR is off in the test settings
    }
    assert [task for task, _ in queued()] == [
        "workers.tasks.embed_photo",
        "workers.tasks.retag_photos",
    ]
    assert all(q.workers is None for q in queues)  # no worker runs in this test
    html = page.content.decode()
    assert "Maintenance <code>maintenance</code></th><td>1</td>" in html


def test_the_dashboard_names_the_backend_its_precision_speed_and_why_it_fell_back(
    client, staff, monkeypatch
):
    from workers.embedding.backends import BackendReport

    engine = get_engine()
    report = BackendReport(
        requested="openvino",
        image_ms=3.24,
        text_ms=0.5,
        image_parity=1.0,
        text_parity=0.99999,
        torch_image_ms=7.5,
        torch_text_ms=1.5,
        reason="openvino: the image tower could not be exported (OutOfMemoryError); "
        "falling back to torch",
    )
    monkeypatch.setattr(engine, "backend", report)
    client.force_login(staff)

    html = client.get(reverse("search:dashboard")).content.decode()

    assert "Runs on: <strong>torch</strong>, fp32, cpu" in html
    assert "3.2 ms per image, 0.5 ms per query" in html
    assert "asked for: openvino" in html
    assert "Backend: openvino: the image tower could not be exported (OutOfMemoryError)" in html
