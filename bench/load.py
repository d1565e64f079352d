"""Load test: many simulated people against the app run the production way, then a burst.

    .venv/bin/python -m bench.load                  # 16 users for 60 s, then 1,000 uploads
    .venv/bin/python -m bench.load --quick          # 8 users for 20 s, then 200 uploads

Starts a private PostgreSQL and Redis (temp folder), gunicorn with the Dockerfile's options
(2 processes x 4 threads), one Celery worker and beat, with production settings (no debug) on
loopback. Rate limits are raised: every simulated person shares one IP address here.

1. **Mixed load**: each simulated person, logged in, loops over text searches (60%), page views
   (photo list, a photo page, albums: 30%) and single-photo uploads through the API (10%).
   Reports requests/s sustained, p50/p95/p99 latency per kind, and errors.
2. **Burst**: 1,000 distinct photos uploaded through the API from 8 threads at once; then waits
   until the worker has processed them and checks that every one is ready, once.
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

import numpy as np
import requests

from mediasearch.devstack import app_environment
from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
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
    session.get(f"{stack.url}/accounts/login/")
    session.post(
        f"{stack.url}/accounts/login/",
        data={"username": name, "password": f"load-test-{name}",
              "csrfmiddlewaretoken": session.cookies["csrftoken"]},
        headers={"Referer": f"{stack.url}/accounts/login/"},
    )  # fmt: skip
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


def mixed_load(stack: Stack, users: list, seconds: float, seed_ids: list[int]) -> dict:
    timings: dict[str, list[float]] = defaultdict(list)
    errors: dict[str, int] = defaultdict(int)
    stop_at = time.monotonic() + seconds
    counter = iter(range(10**9))
    lock = threading.Lock()

    def one_request(index: int, session, token, rng) -> tuple[str, requests.Response]:
        roll = rng.random()
        if roll < 0.6:
            query = {"q": rng.choice(QUERIES)}
            return "search", session.get(f"{stack.url}/", params=query, timeout=60)
        if roll < 0.9:
            url = rng.choice(
                ["/photos/", f"/photos/{rng.choice(seed_ids)}/", "/albums/", "/upload/"]
            )
            return "page", session.get(f"{stack.url}{url}", timeout=60)
        with lock:
            n = next(counter)
        data = scene_jpeg(10_000_000 + index * 100_000 + n)
        return "upload", upload(stack, token, [(f"load-{index}-{n}.jpg", data)])

    def person(index: int, session: requests.Session, token: str) -> None:
        rng = random.Random(index)
        while time.monotonic() < stop_at:
            started = time.perf_counter()
            kind = "?"
            try:
                kind, response = one_request(index, session, token, rng)
                ok = response.status_code == 200
            except requests.RequestException:
                ok = False
            elapsed = (time.perf_counter() - started) * 1000
            with lock:
                timings[kind].append(elapsed)
                if not ok:
                    errors[kind] += 1

    threads = [
        threading.Thread(target=person, args=(i, session, token))
        for i, (session, token) in enumerate(users)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    total = sum(len(v) for v in timings.values())
    report = {"seconds": wall, "requests": total, "rps": total / wall, "kinds": {}}
    for kind, values in sorted(timings.items()):
        array = np.asarray(values)
        report["kinds"][kind] = {
            "n": len(values),
            "p50": float(np.percentile(array, 50)),
            "p95": float(np.percentile(array, 95)),
            "p99": float(np.percentile(array, 99)),
            "errors": errors[kind],
        }
    report["errors"] = sum(errors.values())
    return report


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--burst", type=int, default=1000)
    parser.add_argument("--seed-photos", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.users, args.seconds, args.burst, args.seed_photos = 8, 20, 200, 60

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
        print(f"\nmixed load: {report['requests']} requests in {report['seconds']:.1f} s = "
              f"{report['rps']:.1f} requests/s, {report['errors']} errors")  # fmt: skip
        print("| kind | requests | p50 ms | p95 ms | p99 ms | errors |")
        print("|---|---|---|---|---|---|")
        for kind, row in report["kinds"].items():
            print(f"| {kind} | {row['n']} | {row['p50']:.0f} | {row['p95']:.0f} | "
                  f"{row['p99']:.0f} | {row['errors']} |")  # fmt: skip
        _, burst_token = make_user(stack, "burst")
        result = burst(stack, burst_token, args.burst)
        print(f"\nburst: {result['count']} uploads in {result['upload_seconds']:.1f} s "
              f"({result['http_failures']} failed requests); all processed after "
              f"{result['processed_seconds']:.1f} s: {result['by_status']}, "
              f"{result['photos']} photos")  # fmt: skip
        ok = (
            report["errors"] == 0
            and result["http_failures"] == 0
            and result["photos"] == args.burst
            and result["by_status"].get("ready") == args.burst
        )
        print("\nresult:", "no errors, nothing lost, nothing duplicated" if ok else "PROBLEMS")
        sys.exit(0 if ok else 1)
    finally:
        stack.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
