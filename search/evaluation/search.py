"""Search quality measured through the whole product, with generated scenes whose truth we know.

Scenes are uploaded like any photo (``photo_create`` → Celery worker → pgvector), then queried
through the search views themselves, so the figures cover decoding, JPEG, preprocessing, the
index and the ranking, not just the model. Used by ``manage.py evaluate_search`` and the tests.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import RequestFactory

from search.models import Photo, PhotoTag
from search.photos.services import photo_create
from search.retrieval import views
from workers.embedding.demo.scenes import Scene, caption, scene_family, scene_jpeg, scene_variant
from workers.embedding.demo.training.evaluate import GroupTagQuality, tag_quality
from workers.embedding.tags import TagVocabulary

_RESULT_ID = re.compile(r'src="/photos/(\d+)/thumbnail/"')


@dataclass(frozen=True)
class Recall:
    at_1: float
    at_5: float
    queries: int


@dataclass(frozen=True)
class SceneSet:
    photos: list[Photo]
    scenes: list[Scene]


def ingest_scenes(*, owner, scenes: Sequence[Scene], seed: int = 0) -> SceneSet:
    """Upload each scene through the normal pipeline; return the photos in scene order."""
    rng = random.Random(seed)
    photos = []
    for index, scene in enumerate(scenes):
        name = f"scene-{index:04d}.jpg"
        result = photo_create(owner=owner, file=SimpleUploadedFile(name, scene_jpeg(scene, rng)))
        photos.append(result.photo)
    return SceneSet(photos=photos, scenes=list(scenes))


def wait_until_processed(photos: Sequence[Photo], *, timeout: float) -> None:
    """Block until none of ``photos`` is pending or processing; raise TimeoutError if stuck."""
    ids = [photo.pk for photo in photos]
    deadline = time.monotonic() + timeout
    busy = [Photo.Status.PENDING, Photo.Status.PROCESSING]
    while Photo.objects.filter(pk__in=ids, status__in=busy).exists():
        if time.monotonic() > deadline:
            raise TimeoutError("photos were still being processed; is a Celery worker running?")
        time.sleep(0.25)


def stored_tag_quality(
    *, scene_set: SceneSet, model_id: str, vocabulary: TagVocabulary
) -> list[GroupTagQuality]:
    """How right the tags that the pipeline stored for each scene are, per group of the demo
    vocabulary (see ``workers.embedding.demo.training.evaluate.tag_quality``)."""
    given: dict[int, set[str]] = {photo.pk: set() for photo in scene_set.photos}
    rows = PhotoTag.objects.filter(model_id=model_id, photo__in=scene_set.photos)
    for photo_id, name in rows.values_list("photo_id", "name"):
        given[photo_id].add(name)
    return tag_quality(vocabulary, scene_set.scenes, [given[p.pk] for p in scene_set.photos])


def text_recall(*, user, scene_set: SceneSet, seed: int = 0) -> Recall:
    """Each scene's caption, typed into the search page: is its own photo in the top 1 / 5?"""
    rng = random.Random(seed)
    ranks = []
    for photo, scene in zip(scene_set.photos, scene_set.scenes, strict=True):
        ranked = result_ids(_get_home(user, caption(scene, rng)))
        ranks.append(ranked.index(photo.pk) if photo.pk in ranked else None)
    return _recall(ranks)


def image_recall(*, user, scene_set: SceneSet, seed: int = 0) -> Recall:
    """Another picture of each scene's family as a query image: does the family come first?

    A hit at k means one of the first k results shows the same objects on the same ground.
    """
    rng = random.Random(seed)
    family_of = {
        photo.pk: scene_family(scene)
        for photo, scene in zip(scene_set.photos, scene_set.scenes, strict=True)
    }
    ranks = []
    for scene in scene_set.scenes:
        query = scene_jpeg(scene_variant(scene, rng), rng)
        ranked = result_ids(_post_image(user, query))
        families = [family_of.get(pk) for pk in ranked]
        wanted = scene_family(scene)
        ranks.append(families.index(wanted) if wanted in families else None)
    return _recall(ranks)


def result_ids(html: str) -> list[int]:
    """Photo ids in the order a results page shows them."""
    return [int(pk) for pk in _RESULT_ID.findall(html)]


def _get_home(user, text: str) -> str:
    # Every photo ranked, weak matches included: this measures the ranking, not the cut-off.
    request = RequestFactory().get("/", {"q": text, "strictness": "all"})
    request.user = user
    return views.home(request).content.decode()


def _post_image(user, data: bytes) -> str:
    upload = SimpleUploadedFile("query.jpg", data, content_type="image/jpeg")
    request = RequestFactory().post("/search/image/", {"image": upload, "strictness": "all"})
    request.user = user
    return views.search_by_image(request).content.decode()


def _recall(ranks: list[int | None]) -> Recall:
    n = len(ranks)
    hits_1 = sum(1 for rank in ranks if rank is not None and rank < 1)
    hits_5 = sum(1 for rank in ranks if rank is not None and rank < 5)
    return Recall(at_1=hits_1 / n if n else 0.0, at_5=hits_5 / n if n else 0.0, queries=n)
