"""The per-model HNSW indexes and their migration."""

from __future__ import annotations

import importlib

import pytest
from django.db import connection

from search.models import Embedding, Photo
from search.photos.services import photo_create
from search.retrieval.vector_index import index_name
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine

pytestmark = pytest.mark.django_db


@pytest.fixture
def embedded(alice) -> Photo:
    """A ready photo: its model's index exists."""
    photo = photo_create(owner=alice, file=upload_file("a.jpg", encode(make_image()))).photo
    assert embed_waiting() == {photo.pk: Photo.Status.READY}
    return photo


def test_an_upgrade_rebuilds_full_precision_indexes_in_half_precision(alice, embedded):
    migration = importlib.import_module("search.migrations.0005_half_precision_vector_indexes")
    model_id = get_engine().model_id
    old, new = migration._name("embedding_hnsw_", model_id), index_name(model_id)
    Embedding.objects.create(photo=embedded, model_id="Unindexed/model", vector=[1.0, 0.0])

    def existing() -> set[str]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE indexname LIKE 'embedding_hnsw%'"
            )
            return {name for (name,) in cursor.fetchall()}

    with connection.cursor() as cursor:  # as 0004 left it
        cursor.execute(f'DROP INDEX "{new}"')
        cursor.execute(
            f'CREATE INDEX "{old}" ON search_embedding USING hnsw '
            f"((vector::vector({get_engine().dim})) vector_cosine_ops) WHERE model_id = %s",
            [model_id],
        )
    with connection.schema_editor() as editor:
        migration.to_half(None, editor)
    assert existing() == {new}

    with connection.schema_editor() as editor:
        migration.to_full(None, editor)
    assert existing() == {old}
