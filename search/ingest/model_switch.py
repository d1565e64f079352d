"""Switching the CLIP model without downtime.

1. ``model_switch_start`` records the chosen model as *preparing*; a worker loads it
   (``model_prepare``): a model that cannot be loaded fails here, and nothing else changes.
2. *Building*: workers compute its vectors for every ready photo in batches
   (``model_backfill``), from the originals, into its own rows and its own partial HNSW index.
   Search keeps using the active model's vectors all along.
3. When every ready photo has a vector of the new model, ``model_switch_finish`` makes it
   active in one transaction; search follows within ``ACTIVE_SPEC_TTL`` seconds. The old model
   is *retiring*: its vectors, tags, near-duplicate pairs and index are dropped
   (``model_retire``), and the new model's tags and pairs are computed.

Photos that become ready while the switch runs get the old model's vector from the normal
pipeline and are then picked up by the backfill; a photo made ready by a worker that had not
yet noticed the switch is found by the sweeper (``embed_missing``).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from search import dispatch
from search.ingest.active_model import ACTIVE_SPEC_TTL, forget_active_spec
from search.ingest.selectors import photos_missing_vectors
from search.ingest.services import photos_embed_ready
from search.models import ClipModel, Embedding, NearDuplicatePair, Photo, PhotoTag
from search.retrieval.vector_index import drop_vector_index, ensure_vector_index
from search.tags.services import photos_retag
from workers import task_names
from workers.active_engine import (
    check_chosen_spec,
    engine_for,
    get_engine,
    warm_tagger_in_background,
)
from workers.embedding.backends import PRECISIONS
from workers.embedding.model import ModelLoadError, ModelSpec, register_demo_config

logger = logging.getLogger(__name__)

BACKFILL_BATCH = 32


RETIRE_BATCH = 5000
# Seconds past the new model's ``ACTIVE_SPEC_TTL`` that the old one's vectors are kept: for the
# switch's commit (after ``activated_at``) and for searches that began under the old model.
RETIRE_MARGIN = 2.0


class ModelSwitchError(ValueError):
    """A switch that cannot be started or changed; ``str(error)`` says why."""


def open_clip_model_names() -> list[str]:
    """Every architecture open_clip knows, the demo model's included."""
    import open_clip

    register_demo_config()
    return list(open_clip.list_models())


def model_switch_start(*, name: str, pretrained: str, precision: str = "fp32") -> ClipModel:
    """Record ``name``/``pretrained`` at ``precision`` (fp32 or int8) as the model to switch
    to and have a worker load it."""
    name, pretrained = name.strip(), pretrained.strip()
    if name not in open_clip_model_names():
        raise ModelSwitchError(f"open_clip knows no model called “{name}”.")
    if precision not in PRECISIONS:
        raise ModelSwitchError(f"The precision is one of {', '.join(PRECISIONS)}.")
    current = get_engine()
    if ModelSpec(name, pretrained, precision) == current.spec:
        raise ModelSwitchError("That is the model in use already.")
    with transaction.atomic():
        try:
            check_chosen_spec(ModelSpec(name, pretrained, precision))
        except ModelLoadError as exc:
            raise ModelSwitchError(str(exc)) from None
        _active_row(current)
        try:
            # The constraint clip_model_one_switch decides: of two starts at once, one wins.
            with transaction.atomic():
                incoming = ClipModel.objects.create(
                    name=name,
                    pretrained=pretrained,
                    precision=precision,
                    state=ClipModel.State.PREPARING,
                )
        except IntegrityError:
            raise ModelSwitchError("A model switch is already running; cancel it first.") from None
        dispatch.model_step(task_names.MODEL_PREPARE, incoming.pk)
    return incoming


def _active_row(engine) -> tuple[ClipModel, bool]:
    """The active model's row, and whether this call made it: the configured model (or the
    demo model it fell back to) gets one the first time it is needed, so that it can be
    retired like any other. Of two processes making it at once, one does (clip_model_one_active)."""
    return ClipModel.objects.get_or_create(
        state=ClipModel.State.ACTIVE,
        defaults={
            "name": engine.spec.name,
            "pretrained": engine.spec.pretrained,
            "precision": engine.spec.precision,
            "model_id": engine.model_id,
            "dim": engine.dim,
            "activated_at": timezone.now(),
        },
    )


def model_switch_cancel(*, model_pk: int) -> None:
    """Stop a switch; the vectors it computed are dropped, search never used them."""
    with transaction.atomic():
        updated = ClipModel.objects.filter(
            pk=model_pk, state__in=[ClipModel.State.PREPARING, ClipModel.State.BUILDING]
        ).update(state=ClipModel.State.CANCELLED, updated_at=timezone.now())
        if updated:
            dispatch.model_step(task_names.MODEL_RETIRE, model_pk)


def model_prepare(*, model_pk: int) -> None:
    """Worker: load the incoming model; on success start building, else record why not."""
    model = ClipModel.objects.filter(pk=model_pk, state=ClipModel.State.PREPARING).first()
    if model is None:
        return
    try:
        engine = engine_for(ModelSpec(model.name, model.pretrained, model.precision))
    except ModelLoadError as exc:
        ClipModel.objects.filter(pk=model_pk).update(
            state=ClipModel.State.FAILED, failure_reason=str(exc), updated_at=timezone.now()
        )
        return
    active = ClipModel.objects.filter(state=ClipModel.State.ACTIVE).first()
    if active is not None and active.model_id == engine.model_id:
        ClipModel.objects.filter(pk=model_pk).update(
            state=ClipModel.State.FAILED,
            failure_reason="these are the same weights as the active model's",
            updated_at=timezone.now(),
        )
        return
    ensure_vector_index(engine.model_id, engine.dim)
    # The new model's tags are computed when it becomes active; its vocabulary vectors are
    # ready long before that.
    warm_tagger_in_background(engine)
    with transaction.atomic():
        ClipModel.objects.filter(pk=model_pk, state=ClipModel.State.PREPARING).update(
            state=ClipModel.State.BUILDING,
            model_id=engine.model_id,
            dim=engine.dim,
            updated_at=timezone.now(),
        )
        dispatch.model_step(task_names.MODEL_BACKFILL, model_pk)


def model_backfill(*, model_pk: int, batch_size: int = BACKFILL_BATCH) -> int:
    """Worker: embed one batch of ready photos that lack this model's vector; then send the
    next batch, or finish the switch when none are left. Returns how many were embedded.

    Works for the active model too (``embed_missing``). Safe to run twice: vectors are upserted.
    """
    model = ClipModel.objects.filter(
        pk=model_pk, state__in=[ClipModel.State.BUILDING, ClipModel.State.ACTIVE]
    ).first()
    if model is None:
        return 0
    engine = engine_for(ModelSpec(model.name, model.pretrained, model.precision))
    photos = list(photos_missing_vectors(model_id=model.model_id)[:batch_size])
    if not photos:
        if model.state == ClipModel.State.BUILDING:
            model_switch_finish(model_pk=model_pk)
        return 0
    embedded = photos_embed_ready(engine=engine, photos=photos, renditions=False)
    # Progress is a heartbeat: the sweeper re-sends a switch only when it stops.
    ClipModel.objects.filter(pk=model_pk).update(updated_at=timezone.now())
    if model.state == ClipModel.State.BUILDING or len(photos) == batch_size:
        dispatch.model_step(task_names.MODEL_BACKFILL, model_pk)
    return embedded


def model_switch_finish(*, model_pk: int) -> bool:
    """Make the building model active if it covers every ready photo; True if it did."""
    with transaction.atomic():
        models = {
            row.pk: row
            for row in ClipModel.objects.select_for_update().filter(
                state__in=[ClipModel.State.BUILDING, ClipModel.State.ACTIVE]
            )
        }
        incoming = models.get(model_pk)
        if incoming is None or incoming.state != ClipModel.State.BUILDING:
            return False
        if photos_missing_vectors(model_id=incoming.model_id).exists():
            dispatch.model_step(task_names.MODEL_BACKFILL, model_pk)
            return False
        now = timezone.now()
        outgoing = [row for row in models.values() if row.state == ClipModel.State.ACTIVE]
        ClipModel.objects.filter(pk__in=[row.pk for row in outgoing]).update(
            state=ClipModel.State.RETIRING, updated_at=now
        )
        ClipModel.objects.filter(pk=model_pk).update(
            state=ClipModel.State.ACTIVE, activated_at=now, updated_at=now
        )
        for row in outgoing:
            dispatch.model_step(
                task_names.MODEL_RETIRE, row.pk, countdown=ACTIVE_SPEC_TTL + RETIRE_MARGIN
            )
        dispatch.model_step(task_names.MODEL_AFTER_SWITCH, model_pk)
    forget_active_spec()
    logger.info("model %s is active; search uses its vectors now", incoming.model_id)
    return True


def model_retire(*, model_pk: int) -> int:
    """Worker: drop a retired or cancelled model's vectors, tags, pairs and index, in batches.
    Returns how many vectors were deleted. Safe to run twice."""
    model = ClipModel.objects.filter(
        pk=model_pk, state__in=[ClipModel.State.RETIRING, ClipModel.State.CANCELLED]
    ).first()
    if model is None or not model.model_id:
        if model is not None and model.state == ClipModel.State.RETIRING:
            ClipModel.objects.filter(pk=model_pk).update(state=ClipModel.State.RETIRED)
        return 0
    if ClipModel.objects.filter(
        model_id=model.model_id,
        state__in=[ClipModel.State.ACTIVE, ClipModel.State.BUILDING],
    ).exists():
        return 0  # the same weights are in use again: keep them
    if model.state == ClipModel.State.RETIRING:
        wait = _seconds_until_no_process_searches_it()
        if wait > 0:
            # Too early: come back then, rather than hold a worker asleep meanwhile.
            dispatch.model_step(task_names.MODEL_RETIRE, model_pk, countdown=wait)
            return 0
    deleted = 0
    while True:
        ids = list(
            Embedding.objects.filter(model_id=model.model_id).values_list("pk", flat=True)[
                :RETIRE_BATCH
            ]
        )
        if not ids:
            break
        deleted += Embedding.objects.filter(pk__in=ids).delete()[0]
    PhotoTag.objects.filter(model_id=model.model_id).delete()
    NearDuplicatePair.objects.filter(model_id=model.model_id).delete()
    drop_vector_index(model.model_id)
    if model.state == ClipModel.State.RETIRING:
        ClipModel.objects.filter(pk=model_pk).update(
            state=ClipModel.State.RETIRED, updated_at=timezone.now()
        )
    logger.info("dropped %d vectors of %s", deleted, model.model_id)
    return deleted


def _seconds_until_no_process_searches_it() -> float:
    """How long until every process has re-read which model is active since the current one
    took over: one that read it just before keeps searching the old model's vectors for
    ``ACTIVE_SPEC_TTL`` seconds, and dropping them sooner answered its searches with nothing."""
    activated_at = (
        ClipModel.objects.filter(state=ClipModel.State.ACTIVE)
        .values_list("activated_at", flat=True)
        .first()
    )
    if activated_at is None:
        return 0.0
    unused_from = activated_at + timedelta(seconds=ACTIVE_SPEC_TTL + RETIRE_MARGIN)
    return (unused_from - timezone.now()).total_seconds()


def model_after_switch(*, model_pk: int) -> None:
    """Worker: the tags of the photos under the new model (its backfill made no tags, as the
    model was not active yet; its near-duplicate pairs came with every batch)."""
    model = ClipModel.objects.filter(pk=model_pk, state=ClipModel.State.ACTIVE).first()
    if model is None or get_engine().model_id != model.model_id:
        return
    photos_retag(model_id=model.model_id)


def model_switch_nudge() -> int:
    """Sweeper: re-send the step of a switch (or a retirement) that has made no progress for a
    while: its message was lost, or its worker died. Returns how many were re-sent."""
    stale = timezone.now() - timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER)
    steps: dict[str, str] = {
        ClipModel.State.PREPARING: task_names.MODEL_PREPARE,
        ClipModel.State.BUILDING: task_names.MODEL_BACKFILL,
        ClipModel.State.RETIRING: task_names.MODEL_RETIRE,
    }
    with transaction.atomic():
        stalled = list(
            ClipModel.objects.select_for_update(skip_locked=True).filter(
                state__in=list(steps), updated_at__lt=stale
            )
        )
        for model in stalled:
            ClipModel.objects.filter(pk=model.pk).update(updated_at=timezone.now())
            dispatch.model_step(steps[model.state], model.pk)
    if stalled:
        logger.info("re-sent stalled model steps: %s", [str(model) for model in stalled])
    return len(stalled)


def embed_missing() -> int:
    """Send backfill work for ready photos that lack the active model's vector, unless a
    backfill of it is running already; return how many lack it. The sweeper calls this, and
    staff can from the dashboard."""
    engine = get_engine()
    missing = photos_missing_vectors(model_id=engine.model_id).count()
    if missing:
        active, created = _active_row(engine)
        # Backfill batches do not claim photos: two chains would embed the same ones side by
        # side. A chain heartbeats the row after every batch, so a recent heartbeat means one
        # is running; judged as model_switch_nudge judges a stalled step.
        now = timezone.now()
        stale = now - timedelta(seconds=settings.MEDIASEARCH_PENDING_REQUEUE_AFTER)
        idle = ClipModel.objects.filter(pk=active.pk, updated_at__lt=stale)
        if created or idle.update(updated_at=now):
            dispatch.model_step(task_names.MODEL_BACKFILL, active.pk)
    return missing


def photos_reembed_all() -> int:
    """Send work to recompute the active model's vector of every ready photo (after a change
    to decoding or preprocessing, say); they stay searchable meanwhile. Returns how many."""
    ids = list(Photo.objects.filter(status=Photo.Status.READY).values_list("pk", flat=True))
    for start in range(0, len(ids), BACKFILL_BATCH):
        dispatch.reembed_photos(ids[start : start + BACKFILL_BATCH])
    return len(ids)
