"""Fused search benchmark: search p50 with CLIP + OCR text in one ranking against CLIP-only
search, in the same run, at 100k photos.

    .venv/bin/python -m bench.fused_search                  # 100k photos (loading takes minutes)
    .venv/bin/python -m bench.fused_search --photos 10000

Photos are rows with synthetic clustered unit vectors (``bench.search.load_photos``) under
ViT-B-32 (random init: the speed reference), indexed by the app's HNSW index. Every photo has a
text row, as after OCR; one in ten has text: three words of a 2,000-word vocabulary, so a query
word is in about 15 photos' text, and a common word (one of 20) in about 1,500. Each query goes
through ``photo_search`` (text encode cached after the first run of a query, visibility,
filters, HNSW, full-text match, fusion), strictness "all", as the user who owns them all.

- CLIP only: ``MEDIASEARCH_TEXT_MATCH_WEIGHT=0`` (the text signal left out, as before OCR).
- fused, rare word: the query names a word in about 15 photos' text.
- fused, common word: about 1,500 photos' text holds it (the text query's worst case here).
- fused, no text match: words no photo shows (the full-text query runs and finds nothing).
"""

from __future__ import annotations

import argparse
import time

from bench import stack

COMMON = 20
VOCABULARY = 2000


def load_text(first_id: int, count: int) -> None:
    from django.db import connection

    with connection.cursor() as cursor:
        # w0..w19 are common (one text in ten holds one), w20..w1999 rare.
        cursor.execute(
            "INSERT INTO search_phototext (photo_id, status, engine, words, folded, search, "
            "rotation, ms, failure_reason, attempts, read_at, created_at, updated_at) "
            "SELECT id, 'done', 'bench', '[]'::jsonb, t.folded, to_tsvector('simple', t.folded), "
            "0, 100, '', 1, now(), now(), now() FROM search_photo, LATERAL (SELECT CASE "
            "WHEN id %% 10 = 0 THEN 'w' || (id / 10 %% %s) || ' w' || "
            "(%s + (id * 7919) %% %s) || ' w' || (%s + (id * 104729) %% %s) ELSE '' END "
            "AS folded) t WHERE id >= %s",
            [COMMON, COMMON, VOCABULARY - COMMON, COMMON, VOCABULARY - COMMON, first_id],
        )
        cursor.execute("ANALYZE search_phototext")
        cursor.execute("SELECT count(*) FROM search_phototext WHERE folded <> ''")
        print(f"{cursor.fetchone()[0]:,} of {count:,} photos have text")


def timed(user, text: str, runs: int) -> list[float]:
    from search.retrieval.query import Strictness
    from search.retrieval.selectors import photo_search

    photo_search(user=user, text=text, strictness=Strictness.ALL)  # text vector cached
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        photo_search(user=user, text=text, strictness=Strictness.ALL)
        times.append((time.perf_counter() - started) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=15)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--pretrained", default="")
    args = parser.parse_args()

    stack.start(model=args.model, pretrained=args.pretrained)
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection

    from bench.search import load_photos
    from workers.active_engine import get_engine

    engine = get_engine()
    user = get_user_model().objects.create_user("bench-fused", is_staff=False)
    seconds = load_photos(user, args.photos, engine)
    with connection.cursor() as cursor:
        cursor.execute("SELECT min(id) FROM search_photo")
        first = cursor.fetchone()[0]
    load_text(first, args.photos)
    print(f"model {engine.model_id}; {args.photos:,} photos loaded and indexed in {seconds:.0f} s")

    queries = [f"a photo of w{COMMON + 37 * i} at the market" for i in range(args.queries)]
    common = [f"a photo of w{i % COMMON} at the station" for i in range(args.queries)]
    nothing = [f"a photo of zz{i} at the harbour" for i in range(args.queries)]
    modes = {
        "CLIP only (text signal off)": (0.0, queries),
        "fused, rare word (~15 text matches)": (1.0, queries),
        "fused, common word (~1,500 text matches)": (1.0, common),
        "fused, no text match": (1.0, nothing),
    }
    rows: dict[str, list[float]] = {name: [] for name in modes}
    # Interleaved, query by query, so that the machine's other load falls on every mode alike.
    for index in range(args.queries):
        for name, (weight, texts) in modes.items():
            settings.MEDIASEARCH_TEXT_MATCH_WEIGHT = weight
            rows[name] += timed(user, texts[index], args.runs)
    base = stack.percentile(rows["CLIP only (text signal off)"], 50)
    print(f"\n| search at {args.photos:,} photos, {engine.spec.name} | p50 ms | p95 ms | "
          "p50 vs CLIP only |")  # fmt: skip
    print("|---|---|---|---|")
    for name, values in rows.items():
        p50 = stack.percentile(values, 50)
        print(f"| {name} | {p50:.1f} | {stack.percentile(values, 95):.1f} | {p50 / base:.2f}x |")
    print("\ntarget: fused <= 1.5x CLIP only, and <= 50 ms p50 at 100k photos")


if __name__ == "__main__":
    main()
