"""Reads of the ingest concern: the model switch in progress and the photos it still lacks."""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Exists, OuterRef

from search.models import ClipModel, Embedding, Photo


def model_in_switch() -> ClipModel | None:
    return ClipModel.objects.filter(
        state__in=[ClipModel.State.PREPARING, ClipModel.State.BUILDING]
    ).first()


def photos_missing_vectors(*, model_id: str):
    """Ready photos without a vector of ``model_id``, oldest first."""
    has_vector = Embedding.objects.filter(photo=OuterRef("pk"), model_id=model_id)
    return (
        Photo.objects.filter(status=Photo.Status.READY).exclude(Exists(has_vector)).order_by("pk")
    )


@dataclass(frozen=True)
class SwitchProgress:
    model: ClipModel
    done: int
    total: int

    @property
    def percent(self) -> int:
        return 100 if not self.total else int(100 * self.done / self.total)


def switch_progress() -> SwitchProgress | None:
    """How far the running switch is: photos with the new vector out of all ready photos."""
    model = model_in_switch()
    if model is None:
        return None
    total = Photo.objects.filter(status=Photo.Status.READY).count()
    done = 0
    if model.model_id:
        done = Embedding.objects.filter(
            model_id=model.model_id, photo__status=Photo.Status.READY
        ).count()
    return SwitchProgress(model=model, done=done, total=total)
