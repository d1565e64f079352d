"""photo_search end to end in-process: the shipped demo model, real Postgres + pgvector."""

import random
from datetime import UTC, date, datetime

import numpy as np
import pytest
from django.db import connection

from search.albums.services import album_share
from search.models import Album, Embedding, Photo, PhotoTag, SearchLog
from search.photos.selectors import photos_visible_to
from search.photos.services import photo_create
from search.retrieval.query import SearchFilters, Sort, Strictness
from search.retrieval.selectors import SearchError, photo_search, photos_nearest
from search.retrieval.vector_index import ensure_vector_index
from tests.conftest import encode, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.demo.scenes import Scene, render

pytestmark = pytest.mark.django_db


def scene(colour: str, shape: str, *, count: int = 1, background: str = "white", seed: int = 0):
    return Scene(
        shape=shape,
        colour=colour,
        count=count,
        size="large",
        position="middle" if count == 1 else None,
        background=background,
        pattern="plain",
        layout_seed=seed,
    )


def upload(owner, picture: Scene, name: str = "") -> Photo:
    data = encode(render(picture), quality=92)
    return photo_create(owner=owner, file=upload_file(name or f"{picture}.jpg", data)).photo


def embed(*photos: Photo) -> None:
    """Embed the uploaded photos as a worker does, several to a batch; each must be ready."""
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    for photo in photos:
        photo.refresh_from_db()


@pytest.fixture
def shapes_library(alice):
    """Twelve kinds of picture (4 colours x 3 shapes), three pictures of each."""
    rng = random.Random(3)
    photos = {}
    for colour in ("red", "blue", "green", "yellow"):
        for shape in ("star", "circle", "square"):
            for k in range(3):
                picture = scene(
                    colour,
                    shape,
                    count=rng.choice([1, 2, 3]),
                    background="black" if k % 2 else "white",
                    seed=rng.getrandbits(32),
                )
                photo = upload(alice, picture, f"{colour}-{shape}-{k}.jpg")
                photos[photo] = (colour, shape)
    embed(*photos)
    return {photo.pk: kind for photo, kind in photos.items()}


def kinds(hits, library):
    return [library[hit.photo.pk] for hit in hits]


def test_a_good_match_is_shown_and_a_query_without_one_says_so(alice):
    embed(*(upload(alice, scene("red", "circle", background="blue", seed=s)) for s in range(4)))

    found = photo_search(user=alice, text="a red circle on a blue background")
    absent = photo_search(user=alice, text="three green crosses on a yellow background")
    everything = photo_search(
        user=alice, text="three green crosses on a yellow background", strictness=Strictness.ALL
    )

    assert len(found.hits) == 4 and found.min_score is not None
    assert all(hit.score >= found.min_score for hit in found.hits)
    assert (list(absent.hits), absent.hidden) == ([], 4)
    assert absent.best_hidden_score < absent.min_score
    assert len(everything.hits) == 4 and everything.min_score is None


def test_stricter_settings_never_show_more(alice, shapes_library):
    counts = [
        len(photo_search(user=alice, text="red stars", strictness=level).hits)
        for level in (Strictness.ALL, Strictness.LOOSE, Strictness.NORMAL, Strictness.STRICT)
    ]
    assert counts == sorted(counts, reverse=True)
    assert counts[0] == len(shapes_library) > counts[-1]


def test_text_query_ranks_the_described_pictures_first(alice, shapes_library):
    hits = photo_search(user=alice, text="yellow squares", strictness=Strictness.ALL).hits
    assert kinds(hits[:3], shapes_library) == [("yellow", "square")] * 3


def test_a_negative_term_keeps_its_pictures_out_of_the_top(alice, shapes_library):
    plain = photo_search(user=alice, text="stars", strictness=Strictness.ALL).hits
    without_red = photo_search(user=alice, text="stars -red", strictness=Strictness.ALL).hits

    def first_red_star(hits):
        return kinds(hits, shapes_library).index(("red", "star"))

    assert first_red_star(without_red) > max(first_red_star(plain), 5)
    top = kinds(without_red[:6], shapes_library)
    assert all(shape == "star" for _, shape in top[:5]), top
    assert all(colour != "red" for colour, _ in top), top


def test_text_steers_a_similar_photo_search(alice, shapes_library):
    red_circle = next(pk for pk, kind in shapes_library.items() if kind == ("red", "circle"))
    photo = Photo.objects.get(pk=red_circle)

    like_it = photo_search(user=alice, similar_to=photo, strictness=Strictness.ALL).hits
    but_blue = photo_search(
        user=alice, similar_to=photo, text="blue", strictness=Strictness.ALL
    ).hits

    def first(kind, hits):
        return kinds(hits, shapes_library).index(kind)

    assert [colour for colour, _ in kinds(like_it[:2], shapes_library)] == ["red", "red"]
    assert [colour for colour, _ in kinds(but_blue[:2], shapes_library)] == ["blue", "blue"]
    assert first(("blue", "circle"), but_blue) < first(("blue", "circle"), like_it)
    assert first(("blue", "circle"), but_blue) <= 2
    assert photo.pk not in [hit.photo.pk for hit in [*like_it, *but_blue]]


def test_a_purely_negative_query_is_refused_with_a_reason(alice):
    with pytest.raises(SearchError, match="not only what to leave out"):
        photo_search(user=alice, text="-people")
    with pytest.raises(SearchError, match="Describe a photo"):
        photo_search(user=alice, text="   ")


def test_results_can_be_ordered_by_date_taken_with_undated_last(alice, shapes_library):
    ids = list(shapes_library)
    for day, pk in enumerate(ids[:5], start=1):
        Photo.objects.filter(pk=pk).update(taken_at=datetime(2024, 1, day, tzinfo=UTC))

    newest = photo_search(
        user=alice, text="shapes", strictness=Strictness.ALL, sort=Sort.TAKEN_NEWEST
    ).hits
    oldest = photo_search(
        user=alice, text="shapes", strictness=Strictness.ALL, sort=Sort.TAKEN_OLDEST
    ).hits

    assert [hit.photo.pk for hit in newest[:5]] == ids[:5][::-1]
    assert [hit.photo.pk for hit in oldest[:5]] == ids[:5]
    assert all(hit.photo.taken_at is None for hit in newest[5:])
    assert len(newest) == len(oldest) == len(shapes_library)


def test_each_filter_narrows_the_results(alice, bob, staff, shapes_library):
    ids = list(shapes_library)
    Photo.objects.filter(pk=ids[0]).update(
        taken_at=datetime(2023, 6, 1, tzinfo=UTC), camera_model="X100V", latitude=1, longitude=2
    )
    Photo.objects.filter(pk=ids[1]).update(taken_at=datetime(2024, 6, 1, tzinfo=UTC))
    album = Album.objects.create(owner=alice, name="Trip")
    album.photos.add(ids[2], ids[3])
    PhotoTag.objects.create(photo_id=ids[4], model_id=model_id(), name="picnic", score=0.9)
    bobs = upload(bob, scene("red", "star"))
    embed(bobs)

    def found(user=alice, **filters):
        outcome = photo_search(
            user=user, text="shapes", strictness=Strictness.ALL, filters=SearchFilters(**filters)
        )
        return {hit.photo.pk for hit in outcome.hits}

    assert found(taken_after=date(2023, 1, 1), taken_before=date(2023, 12, 31)) == {ids[0]}
    assert found(taken_after=date(2024, 1, 1)) == {ids[1]}
    assert found(camera="x100v") == {ids[0]}
    assert found(has_location=True) == {ids[0]}
    assert len(found(has_location=False)) == len(ids) - 1
    assert found(album_id=album.pk) == {ids[2], ids[3]}
    assert found(tag="picnic") == {ids[4]}
    assert found(user=staff, owner_id=bob.pk) == {bobs.pk}
    assert found(user=staff) == set(ids) | {bobs.pk}
    assert found(user=bob, owner_id=alice.pk) == set()  # a filter never widens what one sees


def model_id():
    from workers.active_engine import get_engine

    return get_engine().model_id


def test_shared_albums_are_searchable_by_the_people_they_are_shared_with(alice, bob):
    shared = upload(alice, scene("red", "star"))
    private = upload(alice, scene("red", "star", background="black"))
    embed(shared, private)
    album = Album.objects.create(owner=alice, name="For Bob")
    album.photos.add(shared)

    def bobs_results():
        hits = photo_search(user=bob, text="a red star", strictness=Strictness.ALL).hits
        return [hit.photo.pk for hit in hits]

    assert bobs_results() == []
    album_share(album=album, usernames=["bob"])
    assert bobs_results() == [shared.pk]
    assert set(photos_visible_to(bob)) == {shared}
    assert private.pk not in bobs_results()
    album.shared_with.clear()
    assert bobs_results() == []


def test_a_selective_filter_keeps_the_exact_top_results_through_the_hnsw_index(alice):
    """1% of 3,000 photos pass the filter. Without iterative index scans, the index would hand
    back its ef_search nearest rows, almost none of which pass, and the results would be
    missing; with them, the top 10 must equal the exact top 10 of the filtered photos."""
    model, dim, n = "Bench/filtered", 64, 3000
    rng = np.random.default_rng(1)
    photos = Photo.objects.bulk_create(
        Photo(owner=alice, original_filename=f"{i}.jpg", size_bytes=1, sha256=f"{i:064d}",
              status="ready", file=f"originals/x/{i}.jpg",
              camera_model="Rare" if i % 100 == 0 else "Common")
        for i in range(n)
    )  # fmt: skip
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Embedding.objects.bulk_create(
        Embedding(photo=photo, model_id=model, vector=vector)
        for photo, vector in zip(photos, vectors, strict=True)
    )
    ensure_vector_index(model, dim)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_embedding, search_photo")
    rare = [i for i in range(n) if i % 100 == 0]
    filters = SearchFilters(camera="Rare")

    for query in rng.normal(size=(5, dim)).astype(np.float32):
        query /= np.linalg.norm(query)
        expected = [photos[i].pk for i in sorted(rare, key=lambda i: -vectors[i] @ query)[:10]]
        for exact in (False, True, None):
            nearest = photos_nearest(
                user=alice, vector=query, model_id=model, filters=filters, limit=10, exact=exact
            )
            assert [hit.photo.pk for hit in nearest.hits] == expected, exact
        assert nearest.exact  # left to itself, 30 candidates are scanned exactly


def test_every_search_is_logged_with_its_figures(alice_client, alice, shapes_library):
    alice_client.get("/", {"q": "red stars", "camera": "", "strictness": "normal"})
    alice_client.get("/", {"q": "three green crosses", "taken_after": "2024-01-01"})

    first, second = SearchLog.objects.order_by("id")
    assert (first.user, first.kind, first.query, first.via_api) == (
        alice,
        "text",
        "red stars",
        False,
    )
    assert first.result_count > 0 and first.top_score > 0.5 and first.latency_ms > 0
    assert first.filters == {}
    assert (second.result_count, second.top_score) == (0, None)
    assert second.filters == {"taken_after": "2024-01-01"}


def test_dashboard_summarises_the_last_days_searches(client, staff, alice_client, shapes_library):
    for query in ("red stars", "yellow squares", "three green crosses on a yellow background"):
        alice_client.get("/", {"q": query})
    SearchLog.objects.create(kind="text", query="long ago", result_count=1, latency_ms=1)
    SearchLog.objects.filter(query="long ago").update(created_at="2020-01-01T00:00:00Z")

    client.force_login(staff)
    searches = client.get("/dashboard/").context["searches"]

    assert searches.count == 3
    assert (
        searches.no_match
        == SearchLog.objects.filter(result_count=0, created_at__year__gt=2020).count()
    )
    assert 0 < searches.latency_p50_ms <= searches.latency_p95_ms
    assert searches.recent[0].query == "three green crosses on a yellow background"
