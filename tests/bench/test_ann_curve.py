"""The parts of bench.ann_curve that would silently skew its figures if they broke: the exact
answers merged block by block, the hand-built binary COPY rows, and the fits."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
from django.db import connection
from pgvector import HalfVector
from pgvector.psycopg import register_vector

from bench.ann import exact_top_10
from bench.ann_curve import (
    _COPY_HEADER,
    _COPY_TRAILER,
    BackendCpu,
    RunningTop,
    halfvec_copy_rows,
    log_linear_fit,
    power_fit,
    topical_blocks,
)


def test_the_top_10_merged_block_by_block_is_the_exact_top_10():
    vectors = np.concatenate(list(topical_blocks(np.random.default_rng(1), 2_500, 32, 10, 7, 700)))
    queries = np.concatenate(list(topical_blocks(np.random.default_rng(2), 20, 32, 10, 7)))
    running = RunningTop(queries)
    for start in range(0, len(vectors), 700):
        running.add(vectors[start : start + 700], start)

    assert (running.top() == exact_top_10(vectors, queries)).all()


def test_blocks_are_unit_vectors_of_the_asked_shape():
    blocks = list(topical_blocks(np.random.default_rng(1), 1_100, 16, 10, 7, block=500))

    assert [block.shape for block in blocks] == [(500, 16), (500, 16), (100, 16)]
    assert np.allclose(np.linalg.norm(np.concatenate(blocks), axis=1), 1, atol=1e-5)


@pytest.mark.django_db
def test_copy_rows_arrive_as_the_same_ids_and_half_precision_vectors():
    block = np.random.default_rng(3).standard_normal((5, 8)).astype(np.float32)
    connection.ensure_connection()
    raw = connection.connection
    register_vector(raw)
    with raw.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE copied (id bigint, h halfvec(8))")
        with cursor.copy("COPY copied (id, h) FROM STDIN WITH (FORMAT BINARY)") as copy:
            copy.write(_COPY_HEADER + halfvec_copy_rows(40, block) + _COPY_TRAILER)
        cursor.execute("SELECT id, h FROM copied ORDER BY id")
        rows = cursor.fetchall()

    assert [row[0] for row in rows] == [40, 41, 42, 43, 44]
    assert all(isinstance(row[1], HalfVector) for row in rows)
    stored = np.stack([row[1].to_numpy() for row in rows])
    assert (stored == block.astype(np.float16)).all()


def test_fits_recover_known_growth():
    sizes = [100_000, 1_000_000, 10_000_000]
    fit = power_fit(sizes, [3.0 * n**1.2 for n in sizes])
    per_decade, at = log_linear_fit(sizes, [0.99, 0.97, 0.95])

    assert fit.slope == pytest.approx(1.2)
    assert fit.at(100_000_000) == pytest.approx(3.0 * 1e8**1.2)
    assert per_decade == pytest.approx(-0.02)
    assert at(100_000_000) == pytest.approx(0.93)
    with pytest.raises(ValueError):
        power_fit([100_000], [1.0])


@pytest.mark.django_db
def test_backend_cpu_counts_the_work_the_server_did():
    connection.ensure_connection()
    with connection.connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        with BackendCpu(cursor.fetchone()[0], interval=0.05) as cpu:
            started = time.perf_counter()
            cursor.execute("SELECT sum(sqrt(g)) FROM generate_series(1, 3000000) g")
            wall = time.perf_counter() - started

    assert 0.05 < cpu.seconds <= wall * os.cpu_count() + 0.05
