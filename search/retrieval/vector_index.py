"""One partial HNSW index per embedding model, created when a model first writes vectors.

The embedding column has no fixed dimension, so the index is built over an expression,
``vector::halfvec(dim)``, and queries must order by exactly that expression to use it.
Half precision halves the index (1.3 instead of 2.6 GB at a million 512-dimension vectors) at
the same speed and recall (docs/PERFORMANCE.md, ANN); the column itself keeps full precision.
"""

from __future__ import annotations

import hashlib

from django.db import connection, transaction
from psycopg import sql

_known: set[str] = set()


def index_name(model_id: str) -> str:
    return "embedding_hnsw_half_" + hashlib.sha256(model_id.encode()).hexdigest()[:16]


def ensure_vector_index(model_id: str, dim: int) -> None:
    """Create the cosine HNSW index for ``model_id`` if it does not exist yet (idempotent)."""
    if model_id in _known:
        return
    name = index_name(model_id)
    statement = sql.SQL(
        "CREATE INDEX IF NOT EXISTS {name} ON search_embedding "
        "USING hnsw ((vector::halfvec({dim})) halfvec_cosine_ops) WHERE model_id = {model_id}"
    ).format(name=sql.Identifier(name), dim=sql.Literal(dim), model_id=sql.Literal(model_id))
    with transaction.atomic(), connection.cursor() as cursor:
        # Two workers starting together must not both try to build the same index.
        cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [name])
        # Inside a caller's transaction, Django's deferred foreign-key checks would block DDL.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute(statement.as_string(cursor.connection))
    _known.add(model_id)


def forget_known_indexes() -> None:
    """For tests, whose rolled-back transactions take created indexes away again."""
    _known.clear()


def drop_vector_index(model_id: str) -> None:
    """Drop the HNSW index of a model whose vectors are gone (idempotent)."""
    statement = sql.SQL("DROP INDEX IF EXISTS {name}").format(
        name=sql.Identifier(index_name(model_id))
    )
    with connection.cursor() as cursor:
        cursor.execute(statement.as_string(cursor.connection))
    _known.discard(model_id)
