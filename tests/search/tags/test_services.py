import pytest
import redis
from django.conf import settings
from django.core.management import CommandError, call_command

from search.models import Photo, PhotoTag
from search.photos.services import photo_create
from search.retrieval.query import SearchFilters, Strictness
from search.retrieval.selectors import photo_search
from search.tags.selectors import photo_tags_for, tag_counts_for
from search.tags.services import photo_tags_replace, photos_retag
from tests.conftest import encode, upload_file
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine
from workers.embedding.demo.scenes import Scene, render
from workers.tasks import retag_photos

pytestmark = pytest.mark.django_db

OTHER_MODEL = "ViT-B-32/laion2b_s34b_b79k"


def scene_photo(owner, *, shape: str, colour: str, background: str = "white", name: str = ""):
    # A clear picture: the demo model often takes a star for a cross, but not this one.
    scene = Scene(shape=shape, colour=colour, count=1, size="large", position="middle",
                  background=background, pattern="plain", layout_seed=0)  # fmt: skip
    data = encode(render(scene, (320, 320)), quality=90)
    return photo_create(owner=owner, file=upload_file(name or f"{colour}-{shape}.jpg", data)).photo


def ready_photos(owner, *scenes: dict[str, str]) -> list[Photo]:
    """Upload a photo of each scene, then embed them together as a worker does."""
    photos = [scene_photo(owner, **scene) for scene in scenes]
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    return photos


def ready_photo(owner, **scene) -> Photo:
    [photo] = ready_photos(owner, scene)
    return photo


def tag_rows(photo: Photo, model_id: str | None = None) -> dict[str, float]:
    rows = PhotoTag.objects.filter(photo=photo, model_id=model_id or get_engine().model_id)
    return dict(rows.values_list("name", "score"))


def names(tags) -> set[str]:
    return set(tags) if isinstance(tags, dict) else {tag.name for tag in tags}


def test_embedding_a_photo_stores_its_tags_with_the_vector(alice):
    photo = ready_photo(alice, shape="star", colour="red")

    tags = photo_tags_for(photo=photo, model_id=get_engine().model_id)

    assert names(tags) == {"red", "star", "plain", "white background"}
    assert [tag.score for tag in tags] == sorted((tag.score for tag in tags), reverse=True)
    assert all(settings.MEDIASEARCH_TAG_MIN_SCORE <= tag.score <= 1 for tag in tags)


def test_embedding_again_replaces_the_tags_instead_of_adding(alice):
    photo = ready_photo(alice, shape="star", colour="red")
    first = tag_rows(photo)
    Photo.objects.filter(pk=photo.pk).update(status=Photo.Status.PENDING)

    assert embed_waiting() == {photo.pk: Photo.Status.READY}

    assert tag_rows(photo) == pytest.approx(first)


def test_a_broken_vocabulary_never_holds_up_the_vectors(alice, settings, tmp_path, caplog):
    broken = tmp_path / "tags.txt"
    broken.write_text("[colour]\nred\n")
    settings.MEDIASEARCH_TAG_VOCABULARY = str(broken)

    photo = ready_photo(alice, shape="star", colour="red")

    assert photo.embeddings.count() == 1
    assert tag_rows(photo) == {}
    assert "the group [colour] needs at least two tags" in caplog.text


def test_retag_recomputes_from_stored_vectors_and_is_idempotent(alice):
    photos = ready_photos(
        alice,
        dict(shape="star", colour="red"),
        dict(shape="square", colour="yellow", background="black"),
    )
    stored = [tag_rows(photo) for photo in photos]
    PhotoTag.objects.filter(photo=photos[0]).delete()
    model_id = get_engine().model_id

    first = photos_retag(model_id=model_id, batch_size=1)
    second = photos_retag(model_id=model_id)

    assert (first.photos, first.changed) == (2, 1)
    assert (second.photos, second.changed) == (2, 0)
    for photo, before in zip(photos, stored, strict=True):
        # The same vectors, scored in batches of another shape: equal to float32 rounding.
        assert tag_rows(photo) == pytest.approx(before, abs=1e-5)


def test_retag_follows_a_vocabulary_change(alice, settings, tmp_path):
    photo, other = ready_photos(
        alice,
        dict(shape="star", colour="red"),
        dict(shape="circle", colour="green", background="yellow"),
    )
    edited = tmp_path / "tags.txt"
    edited.write_text(
        "template: {}\n[shape]\nstar: a star | stars\nround: a circle | circles\n"
        "(square): a square\n(triangle): a triangle\n(cross): a cross\n"
    )
    settings.MEDIASEARCH_TAG_VOCABULARY = str(edited)

    result = photos_retag(model_id=get_engine().model_id, photo_ids=[photo.pk, other.pk])

    assert (result.photos, result.changed) == (2, 2)
    assert names(tag_rows(photo)) == {"star"}
    assert names(tag_rows(other)) == {"round"}


def test_retag_of_some_photos_leaves_the_others_alone(alice):
    photo, other = ready_photos(
        alice,
        dict(shape="star", colour="red"),
        dict(shape="circle", colour="green", background="yellow"),
    )
    PhotoTag.objects.all().delete()

    result = photos_retag(model_id=get_engine().model_id, photo_ids=[other.pk])

    assert (result.photos, result.changed) == (1, 1)
    assert tag_rows(photo) == {} and "circle" in names(tag_rows(other))


def test_retag_under_a_model_this_process_does_not_run_changes_nothing(alice):
    photo = ready_photo(alice, shape="star", colour="red")
    before = tag_rows(photo)

    with pytest.raises(ValueError, match=f"^tags under {OTHER_MODEL} need that model; "):
        photos_retag(model_id=OTHER_MODEL)

    assert tag_rows(photo) == before


def test_tags_of_another_model_are_kept_apart(alice):
    photo = ready_photo(alice, shape="star", colour="red")
    model_id = get_engine().model_id
    photo_tags_replace(model_id=OTHER_MODEL, tags_by_photo={photo.pk: [("beach", 0.9)]})

    photos_retag(model_id=model_id)

    assert "beach" not in names(photo_tags_for(photo=photo, model_id=model_id))
    assert names(photo_tags_for(photo=photo, model_id=OTHER_MODEL)) == {"beach"}
    mine = Photo.objects.filter(owner=alice)
    assert ("beach", 1) not in tag_counts_for(photos_queryset=mine, model_id=model_id)
    assert tag_counts_for(photos_queryset=mine, model_id=OTHER_MODEL) == [("beach", 1)]


def test_replacing_tags_counts_photos_whose_names_changed(alice):
    photo = scene_photo(alice, shape="star", colour="red")
    replace = photo_tags_replace

    assert replace(model_id="m", tags_by_photo={photo.pk: [("a", 0.5), ("b", 0.5)]}) == 1
    assert replace(model_id="m", tags_by_photo={photo.pk: [("a", 0.9), ("b", 0.4)]}) == 0
    assert replace(model_id="m", tags_by_photo={photo.pk: [("b", 0.8), ("c", 0.6)]}) == 1
    assert replace(model_id="m", tags_by_photo={photo.pk: []}) == 1

    assert replace(model_id="m", tags_by_photo={photo.pk: [("c", 0.7)]}) == 1
    assert sorted(PhotoTag.objects.values_list("name", "score")) == [("c", 0.7)]


def test_tag_counts_cover_only_the_photos_given(alice, bob):
    photos = [
        scene_photo(alice, shape="star", colour="red"),
        scene_photo(alice, shape="star", colour="red", background="yellow", name="two.jpg"),
        scene_photo(bob, shape="circle", colour="green", background="yellow"),
    ]
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    model_id = get_engine().model_id

    counts = dict(
        tag_counts_for(photos_queryset=Photo.objects.filter(owner=alice), model_id=model_id)
    )

    assert counts["red"] == 2 and counts["star"] == 2
    assert "green" not in counts and "circle" not in counts
    assert list(counts) == sorted(counts)


def test_a_search_filtered_by_tag_finds_the_photos_the_pipeline_tagged(alice, bob):
    """The tag filter of the real search, over the tags written with each vector: only the
    searcher's photos, only tags of the active model."""
    star = scene_photo(alice, shape="star", colour="red")
    square = scene_photo(alice, shape="square", colour="yellow", background="black")
    bob_star = scene_photo(bob, shape="star", colour="red")
    assert embed_waiting() == {p.pk: Photo.Status.READY for p in (star, square, bob_star)}
    PhotoTag.objects.create(photo=square, model_id=OTHER_MODEL, name="star", score=1.0)

    def tagged(name: str, user=alice) -> list[int]:
        outcome = photo_search(
            user=user, text="a photo", strictness=Strictness.ALL, filters=SearchFilters(tag=name)
        )
        return [hit.photo.pk for hit in outcome.hits]

    assert tagged("star") == [star.pk]
    assert tagged("star", user=bob) == [bob_star.pk]
    assert tagged("square") == [square.pk]
    assert tagged("circle") == []


def test_retag_command_reports_and_changes_nothing_the_second_time(alice, capsys):
    photo = ready_photo(alice, shape="star", colour="red")
    PhotoTag.objects.all().delete()

    call_command("retag_photos")
    first = capsys.readouterr().out
    call_command("retag_photos", "--photo", str(photo.pk))
    second = capsys.readouterr().out

    assert f"Model: {get_engine().model_id}; vocabulary: " in first
    assert "demo/tag_vocabulary.txt (28 tags in 4 groups)" in first
    assert "Retagged 1 photos; 1 got different tags." in first
    assert "Retagged 1 photos; 0 got different tags." in second
    assert "star" in names(tag_rows(photo))


def test_retag_command_names_a_bad_vocabulary(alice, settings, tmp_path):
    bad = tmp_path / "tags.txt"
    bad.write_text("[shape]\nstar\ntemplate: no braces\n")
    settings.MEDIASEARCH_TAG_VOCABULARY = str(bad)

    with pytest.raises(CommandError) as error:
        call_command("retag_photos")

    assert str(error.value) == (
        f"{bad}, line 3: a template needs exactly one {{}}, where the phrase goes: "
        "'template: no braces'"
    )


def test_retag_command_can_queue_the_work_in_chunks(
    alice, capsys, django_capture_on_commit_callbacks
):
    ready_photos(
        alice,
        dict(shape="star", colour="red"),
        dict(shape="circle", colour="green", background="yellow"),
    )
    queue = redis.Redis.from_url(settings.REDIS_URL)
    before = queue.llen(settings.MAINTENANCE_QUEUE)

    with django_capture_on_commit_callbacks(execute=True):
        call_command("retag_photos", "--queue")

    assert queue.llen(settings.MAINTENANCE_QUEUE) == before + 1
    assert "Queued 2 photos in 1 tasks for the workers." in capsys.readouterr().out


def test_retag_task_takes_ids_and_is_safe_to_run_twice(alice):
    photo = ready_photo(alice, shape="star", colour="red")
    stored = tag_rows(photo)
    PhotoTag.objects.all().delete()

    assert retag_photos.apply(args=[[photo.pk]]).get() == 1
    assert retag_photos.apply(args=[[photo.pk]]).get() == 0
    assert retag_photos.apply(args=[[photo.pk + 1000]]).get() == 0
    assert tag_rows(photo) == pytest.approx(stored)


def test_admin_shows_a_photos_tags(client, alice, staff):
    photo = ready_photo(alice, shape="star", colour="red")
    staff.is_superuser = True
    staff.save()
    client.force_login(staff)

    page = client.get(f"/admin/search/photo/{photo.pk}/change/").content.decode()

    assert "white background" in page and get_engine().model_id in page


def test_system_check_reports_a_bad_vocabulary_and_min_score(settings, tmp_path):
    from search.tags.checks import check_tag_settings

    bad = tmp_path / "tags.txt"
    bad.write_text("[only]\none\n")
    settings.MEDIASEARCH_TAG_VOCABULARY = str(bad)
    settings.MEDIASEARCH_TAG_MIN_SCORE = 1.5

    errors = check_tag_settings(None)

    assert [error.id for error in errors] == ["mediasearch.E001", "mediasearch.E002"]
    assert "needs at least two tags" in errors[0].msg
    assert errors[1].msg == "MEDIASEARCH_TAG_MIN_SCORE must be above 0 and at most 1, not 1.5."


def test_shipped_vocabularies_pass_the_system_check():
    from search.tags.checks import check_tag_settings

    assert check_tag_settings(None) == []


def test_download_model_caches_the_tag_vectors_for_the_workers(settings, tmp_path, capsys):
    settings.MEDIASEARCH_TAG_CACHE_DIR = str(tmp_path / "tag-vectors")

    call_command("download_model")

    assert [p.suffix for p in (tmp_path / "tag-vectors").iterdir()] == [".npz"]
    assert f"Tag vectors of 28 tags cached in {tmp_path / 'tag-vectors'}." in (
        capsys.readouterr().out
    )
