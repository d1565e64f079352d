"""Load test: many simulated people against the app run the production way, then a burst.

    .venv/bin/python -m bench.load                  # 16 users for 60 s, then 1,000 uploads
    .venv/bin/python -m bench.load --quick          # 8 users for 20 s, then 200 uploads

Starts a private PostgreSQL and Redis (temp folder), gunicorn with the Dockerfile's options
(2 processes x 4 threads), one Celery worker and beat, with production settings (no debug) on
loopback. Rate limits are raised: every simulated person shares one IP address here.

1. **Mixed load, closed loop**: each simulated person, logged in, loops over text searches
   (60%), page views (photo list, a photo page, albums: 30%) and single-photo uploads through
   the API (10%) without pausing. Reports the requests/s the app sustains when saturated,
   p50/p95/p99 latency per kind, and errors.
2. **Mixed load, open loop** (``--rates``): the same mix arriving at fixed rates, step by
   step, latency counted from when each request was due. Reports the highest rate that keeps
   0 errors and search p95 <= 200 ms.
3. **Burst**: 1,000 distinct photos uploaded through the API from 8 threads at once; then waits
   until the worker has processed them and checks that every one is ready, once.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import requests

from mediasearch.devstack import app_environment
from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_port
from tests.login import log_in

REPO = Path(__file__).resolve().parents[1]
SEARCH_P95_TARGET_MS = 200
QUERIES = [
    "two red circles on a blue background",
    "a green square",
    "yellow stars on a black background",
    "a white cross on the left",
    "three purple triangles",
    "an orange circle at the top",
    "blue squares on a striped background",
]


def scene_jpeg(seed: int) -> bytes:
    from workers.embedding.demo.scenes import random_scene, scene_jpeg

    rng = random.Random(seed)
    return scene_jpeg(random_scene(rng), rng)


class Stack:
    def __init__(self, folder: Path):
        self.folder = folder
        self.postgres = EmbeddedPostgres(folder / "postgres")
        self.redis = EmbeddedRedis(folder / "redis")
        self.processes: list[subprocess.Popen] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database("mediasearch")
        self.redis.start()
        env = app_environment(self.folder, self.postgres.url("mediasearch"), self.redis.url)
        env.update(
            DJANGO_DEBUG="0",
            DJANGO_SECURE_COOKIES="0",
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            MEDIASEARCH_CLIP_MODEL="MediaSearch-Demo",
            MEDIASEARCH_CLIP_PRETRAINED="demo",
            # One loopback address for every simulated person: lift the per-IP limits.
            MEDIASEARCH_RATE_LIMITS="0",
            MEDIASEARCH_MAX_FILES_PER_UPLOAD="100",
        )
        self.env = env
        run = dict(cwd=REPO, env=env, check=True)
        subprocess.run([sys.executable, "manage.py", "migrate", "--no-input", "-v", "0"], **run)
        subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--no-input", "-v", "0"], **run
        )
        log = (self.folder / "app.log").open("ab")
        for args in (
            [sys.executable, "-m", "gunicorn", "mediasearch.wsgi", "--bind",
             f"127.0.0.1:{self.port}", "--workers", "2", "--threads", "4", "--timeout", "120"],
            [sys.executable, "-m", "celery", "-A", "mediasearch", "worker", "--loglevel=WARNING",
             "--concurrency=1"],
            [sys.executable, "-m", "celery", "-A", "mediasearch", "beat", "--loglevel=WARNING",
             "--schedule", str(self.folder / "beat-schedule")],
        ):  # fmt: skip
            self.processes.append(
                subprocess.Popen(
                    args, cwd=REPO, env=env, stdout=log, stderr=log, start_new_session=True
                )
            )
        wait_for_port("127.0.0.1", self.port, 60, process=self.processes[0], name="gunicorn")

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, check=True,
            capture_output=True, text=True,
        ).stdout  # fmt: skip

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
                try:
                    process.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(process.pid, signal.SIGKILL)
        self.redis.stop()
        self.postgres.stop()


def make_user(stack: Stack, name: str) -> tuple[requests.Session, str]:
    """A logged-in web session and an API token for a new user."""
    stack.manage(
        "shell", "-c",
        "from django.contrib.auth import get_user_model; "
        f"get_user_model().objects.create_user('{name}', password='load-test-{name}')",
    )  # fmt: skip
    token = stack.manage("create_api_token", name).strip().splitlines()[-1]
    session = requests.Session()
    # A new connection per request: requests from several threads share this session, and a
    # kept-alive connection that gunicorn closes (2 s idle) while one reuses it would be
    # counted as an error of the app's (requests does not retry it, browsers do).
    session.headers["Connection"] = "close"
    log_in(session, stack.url, username=name, password=f"load-test-{name}")
    return session, token


def upload(stack: Stack, token: str, files: list[tuple[str, bytes]]) -> requests.Response:
    return requests.post(
        f"{stack.url}/api/photos",
        headers={"Authorization": f"Bearer {token}"},
        files=[("files", (name, data, "image/jpeg")) for name, data in files],
        timeout=120,
    )


def wait_until_processed(stack: Stack, token: str, expected: int, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        me = requests.get(
            f"{stack.url}/api/me", headers={"Authorization": f"Bearer {token}"}, timeout=30
        ).json()
        counts = me["photos_by_status"]
        if counts.get("ready", 0) + counts.get("failed", 0) >= expected:
            return me
        if time.monotonic() > deadline:
            return me
        time.sleep(2)


def one_request(stack: Stack, person, rng: random.Random, seed_ids: list[int], number: int):
    """One visit of the mix: a text search (60%), a page view (30%) or an API upload (10%).
    Returns the kind and what went wrong (None: nothing)."""
    session, token = person
    roll = rng.random()
    try:
        if roll < 0.6:
            kind = "search"
            response = session.get(f"{stack.url}/", params={"q": rng.choice(QUERIES)}, timeout=60)
        elif roll < 0.9:
            kind = "page"
            url = rng.choice(
                ["/photos/", f"/photos/{rng.choice(seed_ids)}/", "/albums/", "/upload/"]
            )
            response = session.get(f"{stack.url}{url}", timeout=60)
        else:
            kind = "upload"
            data = scene_jpeg(10_000_000 + number)
            response = upload(stack, token, [(f"load-{number}.jpg", data)])
    except requests.RequestException as exc:
        return kind, type(exc).__name__
    return kind, None if response.status_code == 200 else f"HTTP {response.status_code}"


class Recorder:
    """Latencies and errors per kind of request, from many threads."""

    def __init__(self) -> None:
        self.timings: dict[str, list[float]] = defaultdict(list)
        self.errors: dict[str, int] = defaultdict(int)
        self.problems: dict[str, int] = defaultdict(int)
        self.lock = threading.Lock()

    def record(self, kind: str, problem: str | None, milliseconds: float) -> None:
        with self.lock:
            self.timings[kind].append(milliseconds)
            if problem is not None:
                self.errors[kind] += 1
                self.problems[f"{kind}: {problem}"] += 1

    def report(self, wall: float) -> dict:
        total = sum(len(v) for v in self.timings.values())
        report = {"seconds": wall, "requests": total, "rps": total / wall, "kinds": {}}
        for kind, values in sorted(self.timings.items()):
            array = np.asarray(values)
            report["kinds"][kind] = {
                "n": len(values),
                "p50": float(np.percentile(array, 50)),
                "p95": float(np.percentile(array, 95)),
                "p99": float(np.percentile(array, 99)),
                "errors": self.errors[kind],
            }
        report["errors"] = sum(self.errors.values())
        report["problems"] = dict(self.problems)
        return report


def mixed_load(stack: Stack, users: list, seconds: float, seed_ids: list[int]) -> dict:
    """Closed loop: every person sends the next request as soon as the last one is answered,
    with no pause; the server is saturated and latency is mostly queueing."""
    recorder = Recorder()
    stop_at = time.monotonic() + seconds
    numbers = itertools.count()

    def person(index: int) -> None:
        rng = random.Random(index)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            kind, problem = one_request(stack, users[index], rng, seed_ids, next(numbers))
            recorder.record(kind, problem, (time.perf_counter() - started) * 1000)

    threads = [threading.Thread(target=person, args=(i,)) for i in range(len(users))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return recorder.report(time.monotonic() - started)


def fixed_rate_load(
    stack: Stack, users: list, rate: float, seconds: float, seed_ids: list[int], seed: int
) -> dict:
    """Open loop: requests arrive at ``rate`` a second (Poisson arrivals, spread over the
    people) whether or not earlier ones were answered, as they do from many real people. Each
    latency counts from the moment its request was due, so a server falling behind shows it
    (no coordinated omission)."""
    recorder = Recorder()
    rng = random.Random(seed)
    numbers = itertools.count(seed * 1_000_000)
    pool = ThreadPoolExecutor(max_workers=64)

    def send(due: float, person, request_rng: random.Random, number: int) -> None:
        kind, problem = one_request(stack, person, request_rng, seed_ids, number)
        recorder.record(kind, problem, (time.perf_counter() - due) * 1000)

    started = time.perf_counter()
    due = started
    while due < started + seconds:
        due += rng.expovariate(rate)
        time.sleep(max(0.0, due - time.perf_counter()))
        request_rng = random.Random(rng.random())
        pool.submit(send, due, rng.choice(users), request_rng, next(numbers))
    pool.shutdown(wait=True)
    return recorder.report(time.perf_counter() - started)


def print_report(report: dict) -> None:
    print("| kind | requests | p50 ms | p95 ms | p99 ms | errors |")
    print("|---|---|---|---|---|---|")
    for kind, row in report["kinds"].items():
        print(f"| {kind} | {row['n']} | {row['p50']:.0f} | {row['p95']:.0f} | "
              f"{row['p99']:.0f} | {row['errors']} |")  # fmt: skip
    for problem, count in sorted(report["problems"].items()):
        print(f"error: {problem} x {count}")


def burst(stack: Stack, token: str, count: int, threads: int = 8, per_request: int = 10) -> dict:
    files = [(f"burst-{i:05d}.jpg", scene_jpeg(20_000_000 + i)) for i in range(count)]
    chunks = [files[i : i + per_request] for i in range(0, count, per_request)]
    failures = []
    lock = threading.Lock()

    def send(batch):
        response = upload(stack, token, batch)
        if response.status_code != 200:
            with lock:
                failures.append(response.status_code)

    started = time.monotonic()
    pool = [threading.Thread(target=lambda part=chunks[i::threads]: [send(b) for b in part])
            for i in range(threads)]  # fmt: skip
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    uploaded = time.monotonic() - started
    me = wait_until_processed(stack, token, count, timeout=count * 2 + 120)
    processed = time.monotonic() - started
    return {
        "count": count,
        "http_failures": len(failures),
        "upload_seconds": uploaded,
        "processed_seconds": processed,
        "by_status": me["photos_by_status"],
        "photos": me["photos"],
    }


def print_app_errors(log: Path) -> None:
    """The app's own account of what failed (its log goes with the temp folder)."""
    lines = log.read_text(errors="replace").splitlines()
    for index, line in enumerate(lines):
        if "ERROR" in line or line.startswith("Traceback"):
            print("\n".join(lines[index : index + 30]))
            return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--seed-photos", type=int, default=200)
    parser.add_argument(
        "--rates", default="5,10,15,20,25", help="open-loop steps, requests/s (empty: none)"
    )
    parser.add_argument("--step-seconds", type=float, default=30)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds, args.burst, args.seed_photos = 8, 20, 200, 60
        args.rates, args.step_seconds = "5,15", 15
    args.rates = [float(rate) for rate in args.rates.split(",") if rate.strip()]

    folder = Path(tempfile.mkdtemp(prefix="mediasearch-load-"))
    stack = Stack(folder)
    try:
        stack.start()
        print(f"app at {stack.url} (gunicorn 2x4, one worker); data in {folder}", flush=True)
        people = [make_user(stack, f"user{i}") for i in range(args.users)]
        _, seed_token = people[0]
        for start in range(0, args.seed_photos, 20):
            batch = [(f"seed-{i}.jpg", scene_jpeg(i)) for i in range(start, start + 20)]
            upload(stack, seed_token, batch).raise_for_status()
        wait_until_processed(stack, seed_token, args.seed_photos, timeout=600)
        seed_ids = [
            photo["id"]
            for photo in requests.get(
                f"{stack.url}/api/photos", params={"page_size": 100},
                headers={"Authorization": f"Bearer {seed_token}"}, timeout=30,
            ).json()["items"]
        ]  # fmt: skip
        # Everyone searches the seeded library: shared with the others through an album.
        auth = {"Authorization": f"Bearer {seed_token}"}
        album = requests.post(
            f"{stack.url}/api/albums", json={"name": "Shared"}, headers=auth, timeout=30
        ).json()
        requests.post(
            f"{stack.url}/api/albums/{album['id']}/photos",
            json={"photo_ids": seed_ids},
            headers=auth,
            timeout=30,
        ).raise_for_status()
        requests.post(f"{stack.url}/api/albums/{album['id']}/shares",
                      json={"usernames": [f"user{i}" for i in range(1, args.users)]},
                      headers=auth, timeout=30).raise_for_status()  # fmt: skip
        print(f"seeded {args.seed_photos} photos; {args.users} people for {args.seconds:.0f} s")
        report = mixed_load(stack, people, args.seconds, seed_ids)
        print(f"\nclosed loop, {len(people)} people who never pause: {report['requests']} "
              f"requests in {report['seconds']:.1f} s = {report['rps']:.1f} requests/s, "
              f"{report['errors']} errors")  # fmt: skip
        print_report(report)
        errors = report["errors"]
        sustained = None
        for step, rate in enumerate(args.rates):
            report = fixed_rate_load(stack, people, rate, args.step_seconds, seed_ids, step + 1)
            search = report["kinds"].get("search", {})
            print(f"\nopen loop at {rate:g} requests/s for {args.step_seconds:.0f} s: "
                  f"{report['requests']} requests = {report['rps']:.1f} requests/s, "
                  f"{report['errors']} errors")  # fmt: skip
            print_report(report)
            errors += report["errors"]
            if report["errors"] == 0 and search.get("p95", float("inf")) <= SEARCH_P95_TARGET_MS:
                sustained = rate
        if args.rates:
            print(f"\nhighest rate with 0 errors and search p95 <= {SEARCH_P95_TARGET_MS} ms: "
                  f"{'none' if sustained is None else f'{sustained:g} requests/s'}")  # fmt: skip
        _, burst_token = make_user(stack, "burst")
        result = burst(stack, burst_token, args.burst)
        print(f"\nburst: {result['count']} uploads in {result['upload_seconds']:.1f} s "
              f"({result['http_failures']} failed requests); all processed after "
              f"{result['processed_seconds']:.1f} s: {result['by_status']}, "
              f"{result['photos']} photos")  # fmt: skip
        ok = (
            errors == 0
            and result["http_failures"] == 0
            and result["photos"] == args.burst
            and result["by_status"].get("ready") == args.burst
        )
        print("\nresult:", "no errors, nothing lost, nothing duplicated" if ok else "PROBLEMS")
        if not ok:
            print_app_errors(folder / "app.log")
        sys.exit(0 if ok else 1)
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
