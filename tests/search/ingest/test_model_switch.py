"""The model switch, step by step in this process: start, backfill, finish, cancel, retire, and
the sweeper's part (re-sending stalled steps, backfilling the active model).

Messages go to the real Redis; the tests read what was queued instead of running a worker."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import numpy as np
import pytest
import redis
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from search.ingest.active_model import ACTIVE_SPEC_TTL, active_spec_from_database
from search.ingest.model_switch import (
    ModelSwitchError,
    embed_missing,
    model_backfill,
    model_prepare,
    model_retire,
    model_switch_cancel,
    model_switch_finish,
    model_switch_nudge,
    model_switch_start,
)
from search.models import ClipModel, Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.query import Strictness
from search.retrieval.selectors import photo_search, photos_nearest
from search.retrieval.vector_index import index_name
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers import task_names
from workers.active_engine import engine_for, get_engine, set_active_spec_provider
from workers.embedding.images import decode_image
from workers.embedding.model import ModelSpec
from workers.tasks import sweep_photos

pytestmark = pytest.mark.django_db
INCOMING = ModelSpec("MediaSearch-Demo", "")  # the demo architecture, randomly initialised
SCENES = [("red", "circle"), ("blue", "square"), ("green", "triangle"), ("yellow", "circle")]


def model_steps(queued) -> list[tuple[str, list]]:
    """The model switch's messages among those sent (not the near-duplicate requests)."""
    return [message for message in queued() if message[0] != task_names.FIND_NEAR_DUPLICATES]


def ready_photos(owner, *scenes: tuple[str, str]) -> list[tuple[Photo, bytes]]:
    """Upload a photo of each (colour, shape), then embed them together as a worker does."""
    made = []
    for color, shape in scenes:
        data = encode(make_image(color=color, shape=shape))
        photo = photo_create(owner=owner, file=upload_file(f"{color}-{shape}.jpg", data)).photo
        made.append((photo, data))
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo, _ in made}
    for photo, _ in made:
        photo.refresh_from_db()
    return made


def vectors(model_id: str) -> dict[int, np.ndarray]:
    return {
        row.photo_id: np.asarray(row.vector) for row in Embedding.objects.filter(model_id=model_id)
    }


def index_exists(model_id: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [index_name(model_id)])
        return cursor.fetchone()[0] is not None


def building_switch() -> ClipModel:
    """A switch to INCOMING, loaded by "a worker" and ready to build."""
    incoming = model_switch_start(name=INCOMING.name, pretrained=INCOMING.pretrained)
    model_prepare(model_pk=incoming.pk)
    incoming.refresh_from_db()
    assert incoming.state == "building"
    return incoming


def rankings(user, text: str) -> list[tuple[int, float]]:
    outcome = photo_search(user=user, text=text, strictness=Strictness.ALL)
    return [(hit.photo.pk, round(hit.score, 5)) for hit in outcome.hits]


def exact_rankings(user, text: str, model_id: str) -> list[tuple[int, float]]:
    """What a search ranks when it uses ``model_id``'s text and photo vectors throughout."""
    spec = ModelSpec(*ClipModel.objects.values_list("name", "pretrained").get(model_id=model_id))
    vector = engine_for(spec).encode_texts([text])[0]
    nearest = photos_nearest(user=user, vector=vector, model_id=model_id, exact=True)
    return [(row.photo_id, round(row.score, 5)) for row in nearest.hits.ranked]


def make_stale(model: ClipModel) -> None:
    stale = timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER + 1)
    ClipModel.objects.filter(pk=model.pk).update(updated_at=timezone.now() - stale)


# The sweeper's backfill of the active model.


def test_two_sweeps_during_a_backfill_start_one_chain(
    alice, queued, django_capture_on_commit_callbacks
):
    photos = [photo for photo, _ in ready_photos(alice, *SCENES[:3])]
    active_id = get_engine().model_id
    Embedding.objects.all().delete()  # say, the configured model changed
    backfill = task_names.MODEL_BACKFILL

    with django_capture_on_commit_callbacks(execute=True):
        sweep_photos.apply()
    active = ClipModel.objects.get(state="active", model_id=active_id)
    assert model_steps(queued) == [(backfill, [active.pk])]

    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=active.pk, batch_size=1) == 1  # the chain's first batch
    assert model_steps(queued) == [(backfill, [active.pk])] * 2  # it sends its next batch itself

    with django_capture_on_commit_callbacks(execute=True):
        sweep_photos.apply()  # the chain is running: no second one beside it
    assert model_steps(queued) == [(backfill, [active.pk])] * 2
    assert set(vectors(active_id)) == {photos[0].pk}

    make_stale(active)  # the chain died (its worker was killed): the next sweep starts one
    with django_capture_on_commit_callbacks(execute=True):
        sweep_photos.apply()
    assert model_steps(queued) == [(backfill, [active.pk])] * 3


def test_the_active_models_backfill_stops_when_a_batch_is_not_full(
    alice, queued, django_capture_on_commit_callbacks
):
    ready_photos(alice, *SCENES[:3])
    active_id = get_engine().model_id
    Embedding.objects.all().delete()
    assert embed_missing() == 3
    active = ClipModel.objects.get(state="active")

    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=active.pk, batch_size=2) == 2
        assert model_backfill(model_pk=active.pk, batch_size=2) == 1
        assert model_backfill(model_pk=active.pk, batch_size=2) == 0
    assert model_steps(queued) == [
        (task_names.MODEL_BACKFILL, [active.pk])
    ]  # after the full batch only
    assert len(vectors(active_id)) == 3
    assert ClipModel.objects.get(pk=active.pk).state == "active"


# Starting a switch.


@pytest.mark.django_db(transaction=True)
def test_two_starts_at_once_one_is_refused_with_a_message():
    current = get_engine().spec
    rival_holds, queue = threading.Event(), redis.Redis.from_url(settings.REDIS_URL)
    queue.delete("celery")

    def rival_start() -> None:
        """Another web process starting a switch: its row is written but not committed until
        our start has checked for a running switch and is waiting to insert its own."""
        try:
            with transaction.atomic():
                ClipModel.objects.create(name="MediaSearch-Demo", pretrained="", state="preparing")
                rival_holds.set()
                with connection.cursor() as cursor:
                    for _ in range(200):
                        cursor.execute("SELECT count(*) FROM pg_locks WHERE NOT granted")
                        if cursor.fetchone()[0]:
                            break
                        time.sleep(0.05)
        finally:
            connection.close()

    rival = threading.Thread(target=rival_start)
    rival.start()
    assert rival_holds.wait(30)
    try:
        with pytest.raises(ModelSwitchError, match=r"^A model switch is already running"):
            model_switch_start(name=current.name, pretrained="")
    finally:
        rival.join(30)
    assert list(ClipModel.objects.values_list("name", "pretrained", "state")) == [
        ("MediaSearch-Demo", "", "preparing")
    ]
    assert queue.llen("celery") == 0


# Backfilling the incoming model and finishing the switch.


def test_backfill_embeds_missing_photos_in_batches_and_finishes_only_when_all_have_one(
    alice, queued, django_capture_on_commit_callbacks
):
    made = ready_photos(alice, *SCENES[:3])
    old_id = get_engine().model_id
    old_vectors = vectors(old_id)
    incoming = building_switch()
    active = ClipModel.objects.get(state="active")
    make_stale(incoming)
    before = ClipModel.objects.get(pk=incoming.pk).updated_at

    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=incoming.pk, batch_size=2) == 2
    engine = engine_for(INCOMING)
    expected = engine.encode_images([decode_image(data) for _, data in made])
    built = vectors(incoming.model_id)
    assert sorted(built) == [made[0][0].pk, made[1][0].pk]  # oldest first
    for (photo, _), vector in zip(made[:2], expected[:2], strict=True):
        stored = np.asarray(built[photo.pk])
        assert abs(np.linalg.norm(stored) - 1) < 1e-5
        assert float(stored @ vector) >= 0.9999  # a reduced decode, as for new photos
    assert ClipModel.objects.get(pk=incoming.pk).updated_at > before  # the heartbeat
    # The batch went through the one write path: its near-duplicate pairs are asked for.
    pairs = [(task, args) for task, args in queued() if task == task_names.FIND_NEAR_DUPLICATES]
    assert pairs == [
        (task_names.FIND_NEAR_DUPLICATES, [[made[0][0].pk, made[1][0].pk], incoming.model_id])
    ]
    assert model_steps(queued) == [(task_names.MODEL_BACKFILL, [incoming.pk])]

    [(late, _)] = ready_photos(alice, SCENES[3])  # made ready with the old model meanwhile
    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=incoming.pk, batch_size=1) == 1
        # One ready photo still lacks a vector: the switch waits for it.
        assert model_switch_finish(model_pk=incoming.pk) is False
    assert set(vectors(incoming.model_id)) == {p.pk for p, _ in made}
    assert ClipModel.objects.get(pk=incoming.pk).state == "building"
    assert ClipModel.objects.get(pk=active.pk).state == "active"
    assert get_engine().model_id == old_id
    assert model_steps(queued) == [(task_names.MODEL_BACKFILL, [incoming.pk])] * 3

    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=incoming.pk, batch_size=1) == 1  # the late photo
        assert model_backfill(model_pk=incoming.pk, batch_size=1) == 0  # none left: finish
    assert set(vectors(incoming.model_id)) == {p.pk for p, _ in made} | {late.pk}
    assert dict(ClipModel.objects.values_list("pk", "state")) == {
        incoming.pk: "active",
        active.pk: "retiring",
    }
    assert model_steps(queued)[3:] == [
        (task_names.MODEL_BACKFILL, [incoming.pk]),  # after the late photo's batch
        (task_names.MODEL_RETIRE, [active.pk]),
        (task_names.MODEL_AFTER_SWITCH, [incoming.pk]),
    ]
    assert get_engine().model_id == incoming.model_id
    old_after = vectors(old_id)
    assert set(old_after) == set(old_vectors) | {late.pk}  # dropped only by the retirement
    assert model_backfill(model_pk=incoming.pk, batch_size=1) == 0  # run twice: nothing to do


def test_retiring_waits_until_every_process_has_stopped_searching_the_old_model(
    alice, django_capture_on_commit_callbacks
):
    ready_photos(alice, SCENES[0])
    old_id = get_engine().model_id
    incoming = building_switch()
    model_backfill(model_pk=incoming.pk)
    model_backfill(model_pk=incoming.pk)  # finishes the switch
    outgoing = ClipModel.objects.get(model_id=old_id)
    assert outgoing.state == "retiring"
    activated_at = ClipModel.objects.get(pk=incoming.pk).activated_at

    # A process that read the old model just before the switch committed searches it for
    # ACTIVE_SPEC_TTL seconds more; its vectors must outlive that: too early, retire drops
    # nothing and comes back later.
    with django_capture_on_commit_callbacks() as resent:
        assert model_retire(model_pk=outgoing.pk) == 0
    assert len(resent) == 1  # itself, later
    assert Embedding.objects.filter(model_id=old_id).count() == 1
    assert ClipModel.objects.get(pk=outgoing.pk).state == "retiring"

    time.sleep(
        (activated_at + timedelta(seconds=ACTIVE_SPEC_TTL + 2.5) - timezone.now()).total_seconds()
    )
    assert model_retire(model_pk=outgoing.pk) == 1
    assert ClipModel.objects.get(pk=outgoing.pk).state == "retired"

    started = time.monotonic()
    assert model_retire(model_pk=outgoing.pk) == 0  # run twice: nothing left, no wait
    assert time.monotonic() - started < 1


# Cancelling a switch.


def test_cancel_drops_the_cancelled_models_vectors_and_search_never_used_them(
    alice, queued, django_capture_on_commit_callbacks
):
    ready_photos(alice, *SCENES[:3])
    old_id = get_engine().model_id
    old_vectors = vectors(old_id)
    incoming = building_switch()
    model_backfill(model_pk=incoming.pk, batch_size=2)
    assert len(vectors(incoming.model_id)) == 2 and index_exists(incoming.model_id)
    active_before = ClipModel.objects.values().get(state="active")
    # Half built: search ranks with the active model's text and photo vectors only.
    assert rankings(alice, "a red circle") == exact_rankings(alice, "a red circle", old_id)

    with django_capture_on_commit_callbacks(execute=True):
        model_switch_cancel(model_pk=incoming.pk)
    assert ClipModel.objects.get(pk=incoming.pk).state == "cancelled"
    assert queued() == [(task_names.MODEL_RETIRE, [incoming.pk])]
    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=incoming.pk) == 0  # its chain stops at the next batch
    assert queued() == [(task_names.MODEL_RETIRE, [incoming.pk])]

    started = time.monotonic()
    assert model_retire(model_pk=incoming.pk) == 2
    assert time.monotonic() - started < 1  # search never used it: nothing to wait for
    assert vectors(incoming.model_id) == {} and not index_exists(incoming.model_id)
    assert ClipModel.objects.get(pk=incoming.pk).state == "cancelled"
    assert ClipModel.objects.values().get(state="active") == active_before
    after = vectors(old_id)
    assert set(after) == set(old_vectors)
    for photo_id, vector in old_vectors.items():
        np.testing.assert_array_equal(after[photo_id], vector)
    assert get_engine().model_id == old_id
    assert rankings(alice, "a red circle") == exact_rankings(alice, "a red circle", old_id)


def test_cancel_leaves_the_active_model_and_finished_switches_alone(
    alice, queued, django_capture_on_commit_callbacks
):
    ready_photos(alice, SCENES[0])
    incoming = building_switch()
    model_switch_cancel(model_pk=incoming.pk)
    rows = list(ClipModel.objects.values())

    with django_capture_on_commit_callbacks(execute=True):
        for row in rows:
            model_switch_cancel(model_pk=row["id"])  # the active one, the cancelled one
        model_switch_cancel(model_pk=0)
    assert list(ClipModel.objects.values()) == rows
    assert queued() == []


# The sweeper re-sending stalled steps.


@pytest.mark.parametrize(
    ("state", "step"),
    [
        ("preparing", task_names.MODEL_PREPARE),
        ("building", task_names.MODEL_BACKFILL),
        ("retiring", task_names.MODEL_RETIRE),
    ],
)
def test_nudge_resends_a_stalled_step_once_and_leaves_fresh_ones_alone(
    state, step, queued, django_capture_on_commit_callbacks
):
    stalled = ClipModel.objects.create(name="MediaSearch-Demo", pretrained="", state=state)
    for other in ("active", "retired", "failed", "cancelled"):
        make_stale(ClipModel.objects.create(name="MediaSearch-Demo", pretrained=other, state=other))
    make_stale(stalled)

    with django_capture_on_commit_callbacks(execute=True):
        assert model_switch_nudge() == 1
    assert queued() == [(step, [stalled.pk])]
    refreshed = ClipModel.objects.get(pk=stalled.pk)
    assert (timezone.now() - refreshed.updated_at).total_seconds() < 5
    assert refreshed.state == state

    with django_capture_on_commit_callbacks(execute=True):
        assert model_switch_nudge() == 0  # re-sent just now: fresh again
    assert queued() == [(step, [stalled.pk])]


# Search while the active model changes.


def test_a_search_whose_active_model_changes_meanwhile_uses_one_model_throughout(alice):
    ready_photos(alice, *SCENES[:3])
    old = get_engine()
    ClipModel.objects.create(
        name=old.spec.name, pretrained=old.spec.pretrained, model_id=old.model_id, state="active"
    )
    engine_for(INCOMING)  # loaded already, as during a switch
    answers = iter([old.spec, old.spec])
    # The process's cached answer expires while the search runs (the switch committed).
    set_active_spec_provider(lambda: next(answers, INCOMING))
    try:
        text = "a red circle, asked while the model changes"
        searched = rankings(alice, text)
    finally:
        set_active_spec_provider(active_spec_from_database)
    assert searched == exact_rankings(alice, text, old.model_id)
    # And the text vector cached under the old model's id is the old model's.
    assert rankings(alice, text) == exact_rankings(alice, text, old.model_id)


def test_a_switch_to_int8_moves_the_library_to_a_model_id_of_its_own_and_back(
    alice, queued, django_capture_on_commit_callbacks
):
    made = ready_photos(alice, *SCENES[:2])
    current = get_engine()
    fp32_id = current.model_id

    incoming = model_switch_start(
        name=current.spec.name, pretrained=current.spec.pretrained, precision="int8"
    )
    model_prepare(model_pk=incoming.pk)
    incoming.refresh_from_db()
    assert (incoming.state, incoming.precision) == ("building", "int8")
    assert incoming.model_id == fp32_id + "+int8"
    assert index_exists(incoming.model_id)  # its own index: the two never mix
    with django_capture_on_commit_callbacks(execute=True):
        assert model_backfill(model_pk=incoming.pk) == 2
        assert model_backfill(model_pk=incoming.pk) == 0  # finishes the switch

    assert get_engine().model_id == fp32_id + "+int8"
    assert get_engine().spec.precision == "int8"
    assert set(vectors(fp32_id + "+int8")) == {photo.pk for photo, _ in made}
    with pytest.raises(ModelSwitchError, match="in use already"):
        model_switch_start(
            name=current.spec.name, pretrained=current.spec.pretrained, precision="int8"
        )
    back = model_switch_start(name=current.spec.name, pretrained=current.spec.pretrained)
    assert back.precision == "fp32"
    with pytest.raises(ModelSwitchError, match="precision is one of fp32, int8"):
        model_switch_start(name=current.spec.name, pretrained="", precision="int4")
