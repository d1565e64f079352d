"""Soak test: ``./dev up`` kept running under ordinary use, as a home server is (issue 14).

    .venv/bin/python -m bench.soak_devup                  # 20 minutes at 5 requests/s (6,000)
    .venv/bin/python -m bench.soak_devup --minutes 60 --rate 2 --requests 7200
    .venv/bin/python -m bench.soak_devup --quick          # 2 minutes

Starts ``./dev up`` on a free loopback port with its own data folder (a temp folder, removed
afterwards) and sends it the ordinary mix of ``tests.devup.OrdinaryUse`` (the upload page's
status polling, page loads, searches, an upload every 100 requests) at a fixed rate (Poisson
arrivals, open loop) from a few logged-in people, until the time or the number of requests is
reached, whichever comes first. Every 30 s it prints the requests so far, the answers >= 500,
the failed connections, and the app database's PostgreSQL backends (now and at most). Exit
status 1 when any answer was >= 500, a connection failed, or the backends went over
``mediasearch.devstack.DATABASE_CONNECTIONS_AT_MOST``. Only the app it started is ever asked.

Rate limits are lifted (``MEDIASEARCH_RATE_LIMITS=0``): every person is admin on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from mediasearch.devstack import DATABASE_CONNECTIONS_AT_MOST
from tests.devup import BackendCounter, OrdinaryUse, RunningApp, dev_up

REPORT_EVERY = 30  # seconds


def soak(app: RunningApp, *, seconds: float, requests: int, rate: float, people: int) -> int:
    assert app.url.startswith("http://127.0.0.1:"), "only the app started here is asked"
    use = OrdinaryUse(app)
    sessions = threading.local()

    def session():
        if not hasattr(sessions, "value"):
            sessions.value = app.logged_in_session()
        return sessions.value

    def send(rng: random.Random, number: int) -> None:
        use.send(session(), rng, number)

    use.look_up_stylesheet(app.logged_in_session())
    counter = BackendCounter(app, interval=1.0)
    counter.start()
    rng = random.Random(14)
    pool = ThreadPoolExecutor(max_workers=people)
    started = time.monotonic()
    due = started
    next_report = started + REPORT_EVERY
    sent = 0
    while sent < requests and due < started + seconds:
        due += rng.expovariate(rate)
        time.sleep(max(0.0, due - time.monotonic()))
        pool.submit(send, random.Random(rng.random()), sent)
        sent += 1
        if time.monotonic() >= next_report:
            report(use, counter, time.monotonic() - started)
            next_report += REPORT_EVERY
    pool.shutdown(wait=True)
    counts = counter.stop()
    elapsed = time.monotonic() - started
    report(use, counter, elapsed)
    print(
        f"done: {sent} requests in {elapsed / 60:.1f} min, statuses {dict(use.statuses)}, "
        f"{len(use.server_errors)} answers >= 500, {len(use.transport_errors)} failed "
        f"connections, database backends at most {max(counts)} "
        f"(bound {DATABASE_CONNECTIONS_AT_MOST})"
    )
    for problem in (use.server_errors + use.transport_errors)[:5]:
        print(f"  {problem}")
    healthy = not use.server_errors and not use.transport_errors
    return 0 if healthy and max(counts) <= DATABASE_CONNECTIONS_AT_MOST else 1


def report(use: OrdinaryUse, counter: BackendCounter, elapsed: float) -> None:
    with use.lock:
        answered = sum(use.statuses.values())
        server_errors, failed = len(use.server_errors), len(use.transport_errors)
    counts = counter.counts or [0]
    print(
        f"{elapsed / 60:5.1f} min: {answered} answered, {server_errors} >= 500, {failed} failed "
        f"connections; database backends {counts[-1]} now, {max(counts)} at most",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20)
    parser.add_argument("--requests", type=int, default=6000, help="at most this many")
    parser.add_argument("--rate", type=float, default=5, help="requests a second")
    parser.add_argument("--people", type=int, default=4, help="requests in flight at most")
    parser.add_argument("--quick", action="store_true", help="2 minutes")
    args = parser.parse_args()
    minutes = 2 if args.quick else args.minutes
    folder = Path(tempfile.mkdtemp(prefix="mediasearch-soak-"))
    try:
        print(f"starting ./dev up in {folder}", flush=True)
        with dev_up(folder, MEDIASEARCH_RATE_LIMITS="0") as app:
            print(f"{app.url}: {minutes:g} min at {args.rate:g} requests/s", flush=True)
            return soak(
                app, seconds=minutes * 60, requests=args.requests, rate=args.rate,
                people=args.people,
            )  # fmt: skip
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
