"""``./dev up`` as a home server (issue 14): thousands of ordinary requests from a few people at
once answer without a single 5xx, and the app's PostgreSQL connections stay bounded throughout.

The app runs whole, the README way (embedded PostgreSQL and Redis, web, a real Celery worker and
beat). The mix is what a person's browser sends: page loads, the upload page's status polling,
searches, a few uploads (which the worker then embeds), and the stylesheet. A thread counts the
app database's backends in ``pg_stat_activity`` all along. ``bench/soak_devup.py`` is the long
version of the same.
"""

from __future__ import annotations

import os
import random
import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

import psycopg
import pytest
import requests

from mediasearch.devstack import DATABASE_CONNECTIONS_AT_MOST
from tests.devup import RunningApp, dev_up

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("MEDIASEARCH_LOAD_TEST_REQUESTS", 5000))
THREADS = 6
UPLOAD_EVERY = 100  # requests: a few uploads in the mix, each embedded by the worker
QUERIES = [
    "two red circles on a blue background",
    "a green square",
    "yellow stars on a black background",
    "a white cross on the left",
    "three purple triangles",
]


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # Every simulated person shares the loopback address: the per-IP limits are lifted.
    with dev_up(tmp_path_factory.mktemp("devup-load-var"), MEDIASEARCH_RATE_LIMITS="0") as app:
        yield app


class BackendCounter(threading.Thread):
    """Counts the client backends connected to the app's database, every 0.2 s, from a
    connection to another database (so it does not count itself)."""

    def __init__(self, app: RunningApp):
        super().__init__(daemon=True)
        self.url = app.database_url("postgres")
        self.counts: list[int] = []
        self.done = threading.Event()

    def run(self) -> None:
        with psycopg.connect(self.url, autocommit=True) as conn:
            while not self.done.is_set():
                (count,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE datname = 'mediasearch' AND backend_type = 'client backend'"
                ).fetchone()
                self.counts.append(count)
                self.done.wait(0.2)

    def stop(self) -> list[int]:
        self.done.set()
        self.join(10)
        return self.counts


@dataclass
class Results:
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    photo_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def scene_jpeg(seed: int) -> bytes:
    from workers.embedding.demo.scenes import random_scene, scene_jpeg

    rng = random.Random(seed)
    return scene_jpeg(random_scene(rng), rng)


def one_request(app, session, rng, number: int, results: Results, stylesheet: str):
    """One request of the mix; returns the response."""
    with results.lock:
        known = list(results.photo_ids)
    if number % UPLOAD_EVERY == 0 or not known:
        response = session.post(
            f"{app.url}/upload/",
            files=[("photos", (f"load-{number}.jpg", scene_jpeg(number), "image/jpeg"))],
            data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
            headers={"Accept": "application/json", "Referer": f"{app.url}/upload/"},
            timeout=60,
        )
        if response.status_code == 200:
            with results.lock:
                results.photo_ids += [r["photo"]["id"] for r in response.json()["results"]]
        return response
    roll = rng.random()
    if roll < 0.45:  # the upload page follows its photos
        ids = rng.sample(known, min(len(known), 10))
        return session.get(f"{app.url}/photos/status/", params={"id": ids}, timeout=60)
    if roll < 0.75:
        path = rng.choice(
            ["/", "/photos/", "/upload/", "/albums/", f"/photos/{rng.choice(known)}/", stylesheet]
        )
        return session.get(f"{app.url}{path}", timeout=60)
    return session.get(f"{app.url}/", params={"q": rng.choice(QUERIES)}, timeout=60)


def test_thousands_of_requests_no_5xx_and_bounded_database_connections(app):
    sessions = [app.logged_in_session() for _ in range(THREADS)]
    home = sessions[0].get(f"{app.url}/", timeout=30)
    stylesheet = re.search(r'href="(/static/css/app[^"]*\.css)"', home.text).group(1)
    results = Results()
    numbers = iter(range(REQUESTS))
    numbers_lock = threading.Lock()

    def person(index: int) -> None:
        rng = random.Random(index)
        while True:
            with numbers_lock:
                number = next(numbers, None)
            if number is None:
                return
            try:
                response = one_request(app, sessions[index], rng, number, results, stylesheet)
            except requests.RequestException as error:
                with results.lock:
                    results.transport_errors.append(f"#{number}: {error!r}")
                continue
            with results.lock:
                results.statuses[response.status_code] += 1
                if response.status_code >= 500:
                    results.server_errors.append(
                        f"#{number} {response.request.method} {response.request.path_url} "
                        f"{response.status_code}: {response.text[:300]!r}"
                    )

    counter = BackendCounter(app)
    counter.start()
    started = time.monotonic()
    threads = [threading.Thread(target=person, args=(i,)) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seconds = time.monotonic() - started
    # The worker embeds the uploads while the count goes on: its connections count too.
    ready = wait_until_processed(app, sessions[0], results.photo_ids, timeout=120)
    counts = counter.stop()
    print(
        f"{REQUESTS} requests in {seconds:.1f} s ({REQUESTS / seconds:.1f}/s), statuses "
        f"{dict(results.statuses)}, database backends max {max(counts)} "
        f"(median {sorted(counts)[len(counts) // 2]}, {len(counts)} samples)"
    )

    assert results.server_errors == [], (
        f"{len(results.server_errors)} answers >= 500, the first: {results.server_errors[:3]}"
    )
    assert results.transport_errors == []
    assert results.statuses == {200: REQUESTS}
    assert len(counts) >= seconds * 2  # counted all along, not once at the end
    assert max(counts) <= DATABASE_CONNECTIONS_AT_MOST, (
        f"{max(counts)} PostgreSQL backends at most (bound {DATABASE_CONNECTIONS_AT_MOST}); "
        f"the count over time: {counts[:: max(1, len(counts) // 40)]}"
    )
    assert ready == {"ready": len(results.photo_ids)}


def wait_until_processed(app, session, photo_ids: list[int], timeout: float) -> dict[str, int]:
    """How many of ``photo_ids`` ended in each state, once none is pending or processing."""
    deadline = time.monotonic() + timeout
    while True:
        states: Counter = Counter()
        for start in range(0, len(photo_ids), 50):
            response = session.get(
                f"{app.url}/photos/status/", params={"id": photo_ids[start : start + 50]}
            )
            states.update(photo["status"] for photo in response.json()["photos"])
        if not (states["pending"] or states["processing"]) or time.monotonic() > deadline:
            return dict(states)
        time.sleep(1)


def test_no_debug_pages(app):
    session = app.logged_in_session()
    missing = session.get(f"{app.url}/no-such-page/", timeout=30)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text  # Django's debug 404 lists the URL patterns
