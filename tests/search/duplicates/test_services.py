"""Near-duplicate pairs: recorded after each embedded batch commits, and by the backfill."""

import random

import numpy as np
import pytest
from django.core.management import call_command

from search.duplicates.services import near_duplicate_pairs_find
from search.evaluation.duplicates import edited_copy
from search.models import Embedding, NearDuplicatePair, Photo
from search.photos.services import photo_create
from tests.conftest import upload_file, wait_for
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine
from workers.embedding.demo.scenes import random_scene, scene_family, scene_jpeg

pytestmark = pytest.mark.django_db


@pytest.fixture
def eager_tasks():
    """Celery tasks run in this process when sent, so an on-commit hook does its work here."""
    import workers.tasks  # noqa: F401  (registered, a task sent by name runs eagerly too)
    from mediasearch.celery import app

    before = (app.conf.task_always_eager, app.conf.task_eager_propagates)
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield
    app.conf.task_always_eager, app.conf.task_eager_propagates = before


def scene_files(seed: int) -> dict[str, bytes]:
    """A picture, an edited copy of it, and a picture of different labels."""
    rng = random.Random(seed)
    scene = random_scene(rng, split="heldout")
    other = random_scene(rng, split="heldout")
    assert scene_family(other) != scene_family(scene)
    picture = scene_jpeg(scene, rng)
    return {
        "picture.jpg": picture,
        "copy.jpg": edited_copy(picture, rng),
        "other.jpg": scene_jpeg(other, rng),
    }


def embed(*photos: Photo) -> None:
    """Embed the uploaded photos together, as a worker does; each must be ready."""
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}


def upload(owner, files: dict[str, bytes]) -> dict[str, Photo]:
    return {
        name: photo_create(owner=owner, file=upload_file(name, data)).photo
        for name, data in files.items()
    }


def pair_rows(**filters) -> set[tuple[int, int, str]]:
    return set(
        NearDuplicatePair.objects.filter(**filters).values_list("photo", "other", "model_id")
    )


def vector_distance(first: Photo, second: Photo) -> float:
    a, b = (np.asarray(Embedding.objects.get(photo=photo).vector) for photo in (first, second))
    return float(1.0 - a @ b)


def test_embedding_records_the_copy_as_a_near_duplicate_once_committed(
    alice, eager_tasks, django_capture_on_commit_callbacks
):
    photos = upload(alice, scene_files(seed=3))
    model_id = get_engine().model_id
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        embed(*photos.values())  # one batch
    assert pair_rows() == set()  # nothing is searched before the vectors commit
    for callback in callbacks:  # the pair search, and forgetting filter choices
        callback()

    picture, copy = photos["picture.jpg"], photos["copy.jpg"]
    assert pair_rows() == {(picture.pk, copy.pk, model_id)}
    pair = NearDuplicatePair.objects.get()
    assert pair.distance == pytest.approx(vector_distance(picture, copy), abs=1e-5)
    assert pair.distance <= 0.02


def test_a_batch_finds_pairs_inside_itself_and_with_earlier_photos(alice):
    model_id = get_engine().model_id
    files = scene_files(seed=3)
    earlier = upload(alice, {"picture.jpg": files["picture.jpg"]})["picture.jpg"]
    embed(earlier)
    later = upload(alice, {"copy.jpg": files["copy.jpg"], "other.jpg": files["other.jpg"]})
    embed(*later.values())
    assert NearDuplicatePair.objects.count() == 0  # the test's transaction never commits

    written = near_duplicate_pairs_find(
        photo_ids=[photo.pk for photo in later.values()], model_id=model_id
    )

    assert written == 1
    assert pair_rows() == {(earlier.pk, later["copy.jpg"].pk, model_id)}


def test_pairs_need_matching_pixels_as_well_as_close_vectors(alice, settings):
    photos = upload(alice, scene_files(seed=3))
    embed(*photos.values())
    ids = [photo.pk for photo in photos.values()]
    model_id = get_engine().model_id

    # Wide enough for every vector, so that only the pixels can refuse the other scene.
    settings.MEDIASEARCH_DUPLICATE_MAX_DISTANCE = 2.0
    assert near_duplicate_pairs_find(photo_ids=ids, model_id=model_id) == 1
    settings.MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION = -1.0
    assert near_duplicate_pairs_find(photo_ids=ids, model_id=model_id) == 3


def test_backfill_records_pairs_for_existing_photos_and_is_idempotent(alice, bob):
    alice_photos = upload(alice, scene_files(seed=3))
    bob_photos = upload(bob, scene_files(seed=4))
    embed(*alice_photos.values(), *bob_photos.values())
    model_id = get_engine().model_id
    assert NearDuplicatePair.objects.count() == 0

    call_command("find_duplicates", "--user", "alice", verbosity=0)
    alice_pair = (alice_photos["picture.jpg"].pk, alice_photos["copy.jpg"].pk, model_id)
    assert pair_rows() == {alice_pair}

    call_command("find_duplicates", verbosity=0)
    bob_pair = (bob_photos["picture.jpg"].pk, bob_photos["copy.jpg"].pk, model_id)
    before = list(NearDuplicatePair.objects.order_by("pk").values_list())
    assert pair_rows() == {alice_pair, bob_pair}

    call_command("find_duplicates", verbosity=0)
    assert list(NearDuplicatePair.objects.order_by("pk").values_list()) == before


def test_backfill_fresh_forgets_pairs_that_the_settings_no_longer_allow(alice, settings):
    photos = upload(alice, scene_files(seed=3))
    embed(*photos.values())
    call_command("find_duplicates", verbosity=0)
    assert NearDuplicatePair.objects.count() == 1

    settings.MEDIASEARCH_DUPLICATE_MIN_PIXEL_CORRELATION = 1.01  # nothing passes any more
    call_command("find_duplicates", verbosity=0)
    assert NearDuplicatePair.objects.count() == 1
    call_command("find_duplicates", "--fresh", verbosity=0)
    assert NearDuplicatePair.objects.count() == 0


def test_copies_of_another_owner_are_never_paired(alice, bob):
    files = scene_files(seed=3)
    mine = upload(alice, {"picture.jpg": files["picture.jpg"]})["picture.jpg"]
    theirs = upload(bob, {"copy.jpg": files["copy.jpg"]})["copy.jpg"]
    embed(mine, theirs)

    assert (
        near_duplicate_pairs_find(photo_ids=[mine.pk, theirs.pk], model_id=get_engine().model_id)
        == 0
    )
    assert NearDuplicatePair.objects.count() == 0


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_a_real_worker_records_pairs_for_photos_uploaded_apart(celery_worker, alice):
    files = scene_files(seed=3)
    first = upload(alice, {"picture.jpg": files["picture.jpg"]})
    wait_for(lambda: Photo.objects.filter(status="ready").count() == 1, timeout=60)
    later = upload(alice, {"copy.jpg": files["copy.jpg"], "other.jpg": files["other.jpg"]})

    expected = {(first["picture.jpg"].pk, later["copy.jpg"].pk, get_engine().model_id)}
    wait_for(lambda: pair_rows() == expected, timeout=60, message=f"pairs: {pair_rows()}")
    assert set(Photo.objects.values_list("status", flat=True)) == {"ready"}
