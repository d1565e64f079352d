"""Nearest-neighbour search through the real selectors."""

from __future__ import annotations

import numpy as np
import pytest
from django.db import connection

from search.models import Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.query import Strictness
from search.retrieval.selectors import explain_nearest, photo_search, photos_nearest
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


def test_nearest_neighbour_query_uses_the_models_hnsw_index(alice):
    """With enough rows the planner must pick the partial HNSW index, not a sequential scan."""
    model_id, dim = "Bench/random", 64
    rng = np.random.default_rng(0)
    owner_photos = Photo.objects.bulk_create(
        Photo(owner=alice, original_filename=f"{i}.jpg", size_bytes=1, sha256=f"{i:064d}",
              status="ready", file=f"originals/x/{i}.jpg")
        for i in range(3000)
    )  # fmt: skip
    vectors = rng.normal(size=(3000, dim)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    Embedding.objects.bulk_create(
        Embedding(photo=photo, model_id=model_id, vector=vector)
        for photo, vector in zip(owner_photos, vectors, strict=True)
    )
    ensure_vector_index(model_id, dim)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE search_embedding, search_photo")

    plan = explain_nearest(user=alice, vector=vectors[0], model_id=model_id)

    assert f"Index Scan using {index_name(model_id)}" in plan
    hits = photos_nearest(
        user=alice, vector=vectors[0], model_id=model_id, limit=5, exact=False
    ).hits
    assert hits[0].photo.pk == owner_photos[0].pk
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
