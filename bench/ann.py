"""ANN benchmark: pgvector HNSW (vector and halfvec) vs exact scan in Postgres vs numpy brute force.

    .venv/bin/python -m bench.ann                   # 100k vectors, 512 dims
    .venv/bin/python -m bench.ann --quick           # 20k vectors
    .venv/bin/python -m bench.ann --size 300000 --settings 16:64
    .venv/bin/python -m bench.ann --curve 100000,500000,1000000,2000000  # bench/ann_curve.py

Vectors are synthetic unit vectors shaped like CLIP embeddings (clusters around a few thousand
centres with noise, not uniform on the sphere, which no real collection is), loaded with binary
COPY. Queries come from the same distribution, held out. For each storage type and HNSW setting
(m, ef_construction) it reports build time and size, then for each ef_search the p50/p95 query
latency and recall@10 against the exact top 10 (numpy, float64). References in the same run:
exact scan in Postgres (no index) and numpy brute force over an in-memory float32 matrix (what
rclip does).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench import stack


def clustered_unit_vectors(
    rng: np.random.Generator, n: int, dim: int, centres: np.ndarray, spread: float
) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        count = min(50_000, n - start)
        picks = centres[rng.integers(0, len(centres), count)]
        block = picks + rng.standard_normal((count, dim), dtype=np.float32) * (
            spread / np.sqrt(dim)
        )
        out[start : start + count] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def topical_unit_vectors(
    rng: np.random.Generator, n: int, dim: int, topics: int, seed: int
) -> np.ndarray:
    """Unit vectors shaped more like a photo library's CLIP embeddings: every vector shares a
    common direction (CLIP's embeddings sit in a narrow cone: unrelated photos score about
    0.4), then one of ``topics`` topics, then one of 50 sub-topics of it (a scene, an event:
    about 20 photos each at 1M vectors), then noise of its own. Unrelated vectors score about
    0.40, the same topic 0.60, the same sub-topic 0.80.

    ``seed`` fixes the directions, so queries can be drawn from the same topics."""
    directions = np.random.default_rng(seed)

    def unit(count: int) -> np.ndarray:
        block = directions.standard_normal((count, dim), dtype=np.float32)
        return block / np.linalg.norm(block, axis=1, keepdims=True)

    common, topic_directions, subtopic_directions = unit(1)[0], unit(topics), unit(topics * 50)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 50_000):
        count = min(50_000, n - start)
        topic = rng.integers(0, topics, count)
        subtopic = topic * 50 + rng.integers(0, 50, count)
        noise = rng.standard_normal((count, dim), dtype=np.float32) / np.sqrt(dim)
        block = (0.7 * common + 0.5 * topic_directions[topic]
                 + 0.5 * subtopic_directions[subtopic] + 0.5 * noise)  # fmt: skip
        out[start : start + count] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def exact_top_10(vectors: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """The true top 10 of each query, in float64, a block of vectors at a time (1M x 512 in
    float64 would be 4 GB at once)."""
    scores = np.empty((len(queries), len(vectors)), dtype=np.float64)
    for start in range(0, len(vectors), 100_000):
        block = vectors[start : start + 100_000].astype(np.float64)
        scores[:, start : start + len(block)] = queries.astype(np.float64) @ block.T
    top = np.argpartition(-scores, 10, axis=1)[:, :10]
    order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1)
    return np.take_along_axis(top, order, axis=1)


def load(cursor, vectors: np.ndarray) -> float:
    dim = vectors.shape[1]
    cursor.execute("DROP TABLE IF EXISTS bench_items")
    cursor.execute(f"CREATE TABLE bench_items (id bigint, v vector({dim}), h halfvec({dim}))")
    started = time.perf_counter()
    with cursor.copy("COPY bench_items (id, v) FROM STDIN WITH (FORMAT BINARY)") as copy:
        copy.set_types(["int8", "vector"])
        for index, vector in enumerate(vectors):
            copy.write_row((index, vector))
    cursor.execute(f"UPDATE bench_items SET h = v::halfvec({dim})")
    cursor.execute("VACUUM ANALYZE bench_items")
    return time.perf_counter() - started


def timed_queries(cursor, sql: str, queries: np.ndarray) -> tuple[list[float], list[list[int]]]:
    latencies, results = [], []
    for query in queries:
        started = time.perf_counter()
        cursor.execute(sql, (query,))
        rows = cursor.fetchall()
        latencies.append((time.perf_counter() - started) * 1000)
        results.append([row[0] for row in rows])
    return latencies, results


def recall_at_10(results: list[list[int]], truth: np.ndarray) -> float:
    hits = [len(set(r[:10]) & set(t[:10])) for r, t in zip(results, truth, strict=True)]
    return float(np.mean(hits)) / 10


def row(name: str, latencies: list[float], recall: float | None, extra: str = "") -> str:
    p50, p95 = stack.percentile(latencies, 50), stack.percentile(latencies, 95)
    recall_text = "" if recall is None else f"{recall:.3f}"
    return f"| {name} | {p50:.2f} | {p95:.2f} | {recall_text} | {extra} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--settings", default="16:64", help="m:ef_construction, comma-separated")
    parser.add_argument(
        "--ef-search", default=None, help="default 40,100,200; curve 100,200,300,400"
    )
    parser.add_argument("--storage", default="halfvec,vector")
    parser.add_argument(
        "--shape",
        choices=("islands", "topics"),
        default="islands",
        help="islands: isolated clusters of 50 (hard for HNSW at scale); topics: a common "
        "direction, topics and sub-topics (closer to CLIP embeddings of photos)",
    )
    parser.add_argument(
        "--spread", type=float, default=1.5, help="islands: noise around centres (higher: harder)"
    )
    parser.add_argument("--exact-queries", type=int, default=20, help="for the exact scans")
    parser.add_argument(
        "--maintenance-work-mem", default="2GB", help="the HNSW graph is built in this memory"
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--curve",
        help="N1,N2,... (or 'quick'): the growth curve of bench.ann_curve, halfvec, topics shape",
    )
    parser.add_argument("--out", default="/tmp/mediasearch-bench/ann-curve.jsonl")
    parser.add_argument("--report", help="curve: only report these JSON-lines files (a,b)")
    parser.add_argument("--headroom-gib", type=float, default=4, help="curve: memory left free")
    parser.add_argument("--parallel-workers", type=int, default=1, help="curve: for the build")
    args = parser.parse_args()
    if args.curve:
        from bench import ann_curve

        args.ef_search = args.ef_search or "100,200,300,400"
        if args.quick or args.curve == "quick":
            args.curve, args.queries, args.exact_queries = "quick", 50, 5
        ann_curve.main(args)
        return
    args.ef_search = args.ef_search or "40,100,200"
    if args.quick:
        args.size, args.queries = 20_000, 50

    stack.start(model="MediaSearch-Demo", pretrained="demo")
    from django.db import connection

    rng = np.random.default_rng(1)
    if args.shape == "islands":
        centres = rng.standard_normal((max(args.size // 50, 10), args.dim), dtype=np.float32)
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        vectors = clustered_unit_vectors(rng, args.size, args.dim, centres, args.spread)
        queries = clustered_unit_vectors(rng, args.queries, args.dim, centres, args.spread)
    else:
        topics = max(args.size // 1000, 10)
        vectors = topical_unit_vectors(rng, args.size, args.dim, topics, seed=7)
        queries = topical_unit_vectors(rng, args.queries, args.dim, topics, seed=7)
    truth = exact_top_10(vectors, queries)

    connection.ensure_connection()
    raw = connection.connection
    raw.autocommit = True
    from pgvector.psycopg import register_vector

    register_vector(raw)
    cursor = raw.cursor()
    load_seconds = load(cursor, vectors)
    cursor.execute("SELECT pg_size_pretty(pg_table_size('bench_items'))")
    print(f"{args.size:,} vectors x {args.dim}: loaded with binary COPY in {load_seconds:.1f} s "
          f"(table {cursor.fetchone()[0]})\n")  # fmt: skip
    cursor.execute("SET max_parallel_maintenance_workers = 1")
    cursor.execute(f"SET maintenance_work_mem = '{args.maintenance_work_mem}'")

    print("| method | p50 ms | p95 ms | recall@10 | notes |")
    print("|---|---|---|---|---|")
    numpy_latencies, numpy_results = [], []
    for query in queries:
        started = time.perf_counter()
        scores = vectors @ query
        top = np.argpartition(-scores, 10)[:10]
        numpy_results.append(top[np.argsort(-scores[top])].tolist())
        numpy_latencies.append((time.perf_counter() - started) * 1000)
    print(row("numpy brute force (float32, in memory)", numpy_latencies,
              recall_at_10(numpy_results, truth), "reference"))  # fmt: skip
    for storage, column in (("vector", "v"), ("halfvec", "h")):
        sql = f"SELECT id FROM bench_items ORDER BY {column} <=> %s::{storage}({args.dim}) LIMIT 10"
        cursor.execute("SET enable_indexscan = off")
        count = args.exact_queries
        latencies, results = timed_queries(cursor, sql, queries[:count])
        cursor.execute("SET enable_indexscan = on")
        print(row(f"exact scan in Postgres ({storage})", latencies,
                  recall_at_10(results, truth[:count]), f"reference, {count} queries"))  # fmt: skip

    for storage in args.storage.split(","):
        column, cast = ("v", "vector") if storage == "vector" else ("h", "halfvec")
        ops = "vector_cosine_ops" if storage == "vector" else "halfvec_cosine_ops"
        for setting in args.settings.split(","):
            m, ef_construction = (int(part) for part in setting.split(":"))
            cursor.execute("DROP INDEX IF EXISTS bench_items_hnsw")
            started = time.perf_counter()
            cursor.execute(
                f"CREATE INDEX bench_items_hnsw ON bench_items USING hnsw ({column} {ops}) "
                f"WITH (m = {m}, ef_construction = {ef_construction})"
            )
            build = time.perf_counter() - started
            cursor.execute("SELECT pg_size_pretty(pg_relation_size('bench_items_hnsw'))")
            size = cursor.fetchone()[0]
            sql = (f"SELECT id FROM bench_items ORDER BY {column} <=> "
                   f"%s::{cast}({args.dim}) LIMIT 10")  # fmt: skip
            for ef_search in (int(v) for v in args.ef_search.split(",")):
                cursor.execute(f"SET hnsw.ef_search = {ef_search}")
                timed_queries(cursor, sql, queries[:5])  # warm the index pages
                latencies, results = timed_queries(cursor, sql, queries)
                notes = f"m={m} ef_construction={ef_construction} ef_search={ef_search}"
                notes += f"; build {build:.0f} s, index {size}"
                print(row(f"HNSW {storage}", latencies, recall_at_10(results, truth), notes))
    cursor.execute("DROP TABLE bench_items")


if __name__ == "__main__":
    main()
