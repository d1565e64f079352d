"""Nearest-neighbour search through the real selectors."""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import pytest
from django.conf import settings
from django.db import connection

from search.models import Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.query import SearchFilters, Strictness
from search.retrieval.selectors import photo_search, photos_nearest
from search.retrieval.vector_index import ensure_vector_index, index_name
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


SCENES = [
    dict(color="red", shape="circle"),
    dict(color="blue", shape="square", background="yellow"),
    dict(color="green", shape="triangle", background="black"),
    dict(color="white", shape="circle", background="purple"),
]


@pytest.fixture
def library(alice):
    photos = [
        photo_create(owner=alice, file=upload_file(f"{i}.jpg", encode(make_image(**scene)))).photo
        for i, scene in enumerate(SCENES)
    ]
    assert embed_waiting() == {photo.pk: Photo.Status.READY for photo in photos}
    return photos


def search_text(user, text):
    return photo_search(user=user, text=text, strictness=Strictness.ALL).hits


def expected_order(query_vector, photos):
    vectors = {e.photo_id: np.asarray(e.vector) for e in Embedding.objects.filter(photo__in=photos)}
    return sorted(vectors, key=lambda pk: -float(vectors[pk] @ query_vector))


def test_text_search_ranks_by_cosine_similarity_best_first(alice, library):
    text = "a blue square on a yellow background"
    query = get_engine().encode_texts([text])[0]

    hits = search_text(alice, text)

    assert [hit.photo.pk for hit in hits] == expected_order(query, library)
    assert hits[0].score == pytest.approx(
        float(np.asarray(Embedding.objects.get(photo_id=hits[0].photo.pk).vector) @ query), abs=1e-5
    )
    assert [hit.score for hit in hits] == sorted((hit.score for hit in hits), reverse=True)


def test_the_nearest_photos_are_chosen_in_sql_not_only_sorted_afterwards(alice, library, settings):
    """Fewer results than candidates: which photos come back is decided by the query's ORDER BY
    and LIMIT, where a re-sort in Python cannot repair a wrong order."""
    text = "a blue square on a yellow background"
    best = expected_order(get_engine().encode_texts([text])[0], library)
    settings.MEDIASEARCH_SEARCH_MAX_RESULTS = 2

    assert [hit.photo.pk for hit in search_text(alice, text)] == best[:2]
    vector = np.asarray(Embedding.objects.get(photo_id=best[0]).vector)
    nearest = photos_nearest(user=alice, vector=vector, model_id=get_engine().model_id, limit=1)
    assert [hit.photo.pk for hit in nearest.hits] == best[:1]


def test_similar_uses_the_stored_vector_and_leaves_the_photo_itself_out(alice, library):
    first = library[0]
    stored = np.asarray(Embedding.objects.get(photo=first).vector)

    hits = photo_search(user=alice, similar_to=first, strictness=Strictness.ALL).hits

    assert [hit.photo.pk for hit in hits] == [
        pk for pk in expected_order(stored, library) if pk != first.pk
    ]


def test_search_only_returns_the_users_own_ready_photos(alice, bob, library):
    bobs = photo_create(owner=bob, file=upload_file("b.jpg", encode(make_image(color="red")))).photo
    assert embed_waiting() == {bobs.pk: Photo.Status.READY}
    Photo.objects.filter(pk=library[3].pk).update(status="failed")

    alice_hits = search_text(alice, "a red circle")
    bob_hits = search_text(bob, "a red circle")

    assert {hit.photo.pk for hit in alice_hits} == {p.pk for p in library[:3]}
    assert [hit.photo.pk for hit in bob_hits] == [bobs.pk]


def test_vectors_of_another_model_are_never_mixed_in(alice, library):
    engine = get_engine()
    Embedding.objects.create(photo=library[0], model_id="Other/model", vector=[1.0, 0.0, 0.0])
    hits = photos_nearest(user=alice, vector=[1.0, 0.0, 0.0], model_id="Other/model").hits
    assert [hit.photo.pk for hit in hits] == [library[0].pk]
    assert len(search_text(alice, "x")) == len(library)
    assert engine.model_id != "Other/model"


@contextmanager
def nearest_query_plans():
    """The plan of each nearest-neighbour query run inside, as Postgres chose it: EXPLAINed on
    the same cursor just before the query runs, so that the selector's session settings
    (``SET LOCAL hnsw.ef_search``...) weigh on the plan as they do on the query."""
    plans: list[str] = []

    def explain_first(execute, sql, params, many, context):
        if not many and 'FROM "search_embedding"' in sql and "ORDER BY" in sql:
            execute(f"EXPLAIN {sql}", params, many, context)
            plans.append("\n".join(row[0] for row in context["cursor"].fetchall()))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(explain_first):
        yield plans


def test_a_large_candidate_set_goes_through_the_hnsw_index_and_a_small_one_is_scanned(alice):
    """The exact-or-index decision of photos_nearest, as the planner sees the SQL it runs:
    6,000 candidates (at the default ef_search the planner prefers a sequential scan below
    about 5,000) walk the model's HNSW index; a filter that leaves 60 of them must not."""
    model_id, dim, n = "Bench/random", 64, 6000
    rng = np.random.default_rng(0)
    photos = Photo.objects.bulk_create(
        Photo(owner=alice, original_filename=f"{i}.jpg", size_bytes=1, sha256=f"{i:064d}",
              status="ready", file=f"originals/x/{i}.jpg",
              camera_model="Rare" if i % 100 == 0 else "Common")
        for i in range(n)
    )  # fmt: skip
    vectors = rng.normal(size=(n, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Embedding.objects.bulk_create(
        Embedding(photo=photo, model_id=model_id, vector=vector)
        for photo, vector in zip(photos, vectors, strict=True)
    )
    ensure_vector_index(model_id, dim)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_embedding, search_photo")
    index_scan = f"Index Scan using {index_name(model_id)}"

    with nearest_query_plans() as plans:
        everything = photos_nearest(user=alice, vector=vectors[0], model_id=model_id)
    assert not everything.exact
    assert len(plans) == 1 and index_scan in plans[0]
    assert len(everything.hits) == settings.MEDIASEARCH_SEARCH_MAX_RESULTS
    assert everything.hits[0].photo.pk == photos[0].pk
    assert everything.hits[0].score == pytest.approx(1.0, abs=1e-3)  # half precision
    # The index's relaxed order comes back nearly sorted; the selector sorts it strictly.
    ranked = [(-row.score, row.photo_id) for row in everything.hits.ranked]
    assert ranked == sorted(ranked)

    rare = [i for i in range(n) if i % 100 == 0]
    with nearest_query_plans() as plans:
        few = photos_nearest(
            user=alice, vector=vectors[0], model_id=model_id, filters=SearchFilters(camera="Rare")
        )
    assert few.exact
    assert len(plans) == 1 and index_name(model_id) not in plans[0]
    assert [hit.photo.pk for hit in few.hits] == [
        photos[i].pk for i in sorted(rare, key=lambda i: -float(vectors[i] @ vectors[0]))
    ]
    assert few.hits[0].score == pytest.approx(1.0, abs=1e-6)  # full precision
