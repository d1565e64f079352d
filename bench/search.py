"""Search benchmark: text query end to end (HTTP → text encode → ANN → rendered page), and
cold start (first query after the model sat idle) vs a warm query.

    .venv/bin/python -m bench.search                     # 10k photos
    .venv/bin/python -m bench.search --photos 100000     # 100k photos (loading takes minutes)
    .venv/bin/python -m bench.search --quick             # 3k photos, short idle

Photos are rows with synthetic clustered unit vectors from the active model's id (no files: the
page renders thumbnail links, it does not read them), indexed by the app's own per-model HNSW
index; each has five tags and one of twelve cameras, so the search page's filter choices have
something to count. Queries go through Django's full request stack (test client, no socket), as
a logged-in user, with strictness "all" so that every page shows a full 60 results (synthetic
vectors are weak matches for any text: the default strictness would render "no good match");
the search log is written as in production. Distinct queries pay a text encode each; repeated
queries hit the text-embedding cache.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from bench import stack

WORDS = ("red", "blue", "green", "yellow", "white", "black", "purple", "orange", "pink", "grey")
THINGS = ("circle", "square", "triangle", "star", "cross", "circles", "stars", "crosses")
PLACES = ("on the left", "at the top", "in the middle", "on a striped background", "")


def queries(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [
        f"{rng.choice(WORDS)} {rng.choice(THINGS)} {rng.choice(PLACES)} {index}".strip()
        for index in range(count)
    ]


def load_photos(user, count: int, engine) -> float:
    from django.db import connection
    from pgvector.psycopg import register_vector

    from search.models import Photo
    from search.retrieval.vector_index import ensure_vector_index

    rng = np.random.default_rng(3)
    centres = rng.standard_normal((max(count // 50, 10), engine.dim), dtype=np.float32)
    started = time.perf_counter()
    connection.ensure_connection()
    register_vector(connection.connection)
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM search_photo")
        first = cursor.fetchone()[0] + 1000
        raw = cursor.cursor
        # Copies of one photo made by the ORM: every column the schema has gets a valid value.
        template = Photo.objects.create(
            owner=user, file="photos/template.jpg", original_filename="template.jpg",
            size_bytes=1000, sha256="template", image_format="JPEG", status=Photo.Status.READY,
            thumbnail="t/template.jpg", preview="p/template.jpg",
        )  # fmt: skip
        columns = [c.name for c in connection.introspection.get_table_description(
            cursor, Photo._meta.db_table)]  # fmt: skip
        varying = {
            "id": "g",
            "sha256": "lpad(to_hex(g), 64, '0')",
            "file": "'photos/' || g || '.jpg'",
            "original_filename": "g || '.jpg'",
            "thumbnail": "'t/' || g || '.jpg'",
            "preview": "'p/' || g || '.jpg'",
            "camera_model": "'Camera ' || (g % 12)",
        }
        select = ", ".join(varying.get(c, c) for c in columns)
        cursor.execute(
            f"INSERT INTO search_photo ({', '.join(columns)}) SELECT {select} "
            f"FROM search_photo, generate_series({first}, {first + count - 1}) AS g "
            f"WHERE id = {template.pk}"
        )
        template.delete()
        with raw.copy(
            "COPY search_embedding (photo_id, model_id, vector, frame_ms, created_at) "
            "FROM STDIN WITH (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["int8", "text", "vector", "int4", "timestamptz"])
            from django.utils import timezone

            now = timezone.now()
            for pk in range(first, first + count):
                vector = centres[rng.integers(len(centres))] + rng.standard_normal(
                    engine.dim, dtype=np.float32
                ) * (0.9 / np.sqrt(engine.dim))
                copy.write_row((pk, engine.model_id, vector / np.linalg.norm(vector), 0, now))
        # Five zero-shot tags a photo from a vocabulary of 60, as the worker would write them:
        # the search page's tag filter counts them.
        cursor.execute(
            "INSERT INTO search_phototag (photo_id, model_id, name, score) "
            "SELECT g, %s, 'tag ' || ((g * 7 + k * 13) %% 60), 1.0 / (k + 1) "
            f"FROM generate_series({first}, {first + count - 1}) AS g, generate_series(0, 4) AS k",
            [engine.model_id],
        )
        cursor.execute(f"SELECT setval('search_photo_id_seq', {first + count})")
        cursor.execute("ANALYZE search_photo")
        cursor.execute("ANALYZE search_embedding")
        cursor.execute("ANALYZE search_phototag")
    ensure_vector_index(engine.model_id, engine.dim)
    return time.perf_counter() - started


def timed_get(client, text: str) -> float:
    started = time.perf_counter()
    response = client.get("/", {"q": text, "strictness": "all"})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    assert response.content.count(b'class="tile"') == 60, "expected a full page of results"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=10_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--idle", type=float, default=60, help="seconds the model sits idle")
    parser.add_argument("--model", default="MediaSearch-Demo")
    parser.add_argument("--pretrained", default="demo")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.queries, args.idle = 3_000, 20, 15

    stack.start(model=args.model, pretrained=args.pretrained)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from workers.active_engine import get_engine

    started = time.perf_counter()
    engine = get_engine()
    load_seconds = time.perf_counter() - started
    user = get_user_model().objects.create_user("bench-search", is_staff=False)
    seconds = load_photos(user, args.photos, engine)
    print(f"model {engine.model_id} (loaded in {load_seconds:.1f} s); "
          f"{args.photos:,} photos loaded and indexed in {seconds:.1f} s")  # fmt: skip
    client = Client()
    client.force_login(user)
    timed_get(client, "warm up the templates")

    distinct = queries(args.queries, seed=1)
    fresh, repeated, encode = [], [], []
    for text in distinct:
        fresh.append(timed_get(client, text))  # first time: text encode + ANN + page
        repeated.append(timed_get(client, text))  # again: cached text embedding
    for text in queries(args.queries, seed=2):
        started = time.perf_counter()
        engine.encode_texts([text])
        encode.append((time.perf_counter() - started) * 1000)

    print("\n| text query, end to end | p50 ms | p95 ms |")
    print("|---|---|---|")
    for name, values in (
        ("new query (text encode + ANN + page)", fresh),
        ("repeated query (cached text embedding)", repeated),
        ("text encode alone (reference)", encode),
    ):
        print(f"| {name} | {stack.percentile(values, 50):.1f} "
              f"| {stack.percentile(values, 95):.1f} |")  # fmt: skip

    # Cold start: new queries after the process sat idle, against new queries while warm.
    cold, warm = [], []
    for index, text in enumerate(queries(3, seed=3)):
        time.sleep(args.idle)
        cold.append(timed_get(client, text))
        warm.append(statistics.median(timed_get(client, t) for t in queries(5, seed=10 + index)))
    print(f"\ncold start after {args.idle:.0f} s idle: first new query "
          f"{statistics.median(cold):.1f} ms vs warm new query {statistics.median(warm):.1f} ms "
          f"= {statistics.median(c / w for c, w in zip(cold, warm, strict=True)):.2f}x "
          f"(target <= 2x); a process's very first search waits for the model load "
          f"({load_seconds:.1f} s) unless the web server warmed it up at start")  # fmt: skip


if __name__ == "__main__":
    main()
