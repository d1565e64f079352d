"""``./dev up`` as a home server (issue 14): thousands of ordinary requests from a few people at
once answer without a single 5xx, and the app's PostgreSQL connections stay bounded throughout.

The app runs whole, the README way (embedded PostgreSQL and Redis, web, a real Celery worker and
beat). The mix is what a person's browser sends (``tests.devup.OrdinaryUse``), from a few threads
as fast as the app answers, while a thread counts the app database's backends in
``pg_stat_activity`` all along. ``bench/soak_devup.py`` is the long version of the same.
"""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from mediasearch.devstack import DATABASE_CONNECTIONS_AT_MOST
from tests.devup import BackendCounter, OrdinaryUse, dev_up

pytestmark = pytest.mark.integration

REQUESTS = int(os.environ.get("MEDIASEARCH_LOAD_TEST_REQUESTS", 5000))
THREADS = 6


@pytest.fixture(scope="module")
def app(tmp_path_factory):
    # Every simulated person shares the loopback address: the per-IP limits are lifted.
    with dev_up(tmp_path_factory.mktemp("devup-load-var"), MEDIASEARCH_RATE_LIMITS="0") as app:
        yield app


def test_thousands_of_requests_no_5xx_and_bounded_database_connections(app):
    sessions = [app.logged_in_session() for _ in range(THREADS)]
    use = OrdinaryUse(app)
    use.look_up_stylesheet(sessions[0])
    numbers = iter(range(REQUESTS))
    numbers_lock = threading.Lock()

    def person(index: int) -> None:
        rng = random.Random(index)
        while True:
            with numbers_lock:
                number = next(numbers, None)
            if number is None:
                return
            use.send(sessions[index], rng, number)

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
    processed = use.wait_until_processed(sessions[0], timeout=120)
    counts = counter.stop()
    print(
        f"{REQUESTS} requests in {seconds:.1f} s ({REQUESTS / seconds:.1f}/s), statuses "
        f"{dict(use.statuses)}, database backends max {max(counts)} "
        f"(median {sorted(counts)[len(counts) // 2]}, {len(counts)} samples)"
    )

    assert use.server_errors == [], (
        f"{len(use.server_errors)} answers >= 500, the first: {use.server_errors[:3]}"
    )
    assert use.transport_errors == []
    assert use.statuses == {200: REQUESTS}
    assert len(counts) >= seconds * 2  # counted all along, not once at the end
    assert max(counts) <= DATABASE_CONNECTIONS_AT_MOST, (
        f"{max(counts)} PostgreSQL backends at most (bound {DATABASE_CONNECTIONS_AT_MOST}); "
        f"the count over time: {counts[:: max(1, len(counts) // 40)]}"
    )
    assert len(use.photo_ids) >= REQUESTS // use.upload_every
    assert processed == {"ready": len(use.photo_ids)}


def test_no_debug_pages(app):
    session = app.logged_in_session()
    missing = session.get(f"{app.url}/no-such-page/", timeout=30)
    assert missing.status_code == 404
    assert "URLconf" not in missing.text  # Django's debug 404 lists the URL patterns
