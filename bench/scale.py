"""Scaling on one machine: ingest with 1, 2 and 3 workers, search with 1 and 2 web processes.

    .venv/bin/python -m bench.scale                 # demo model, 3 rounds
    .venv/bin/python -m bench.scale --quick         # 1 round, 64 photos, 10 s of search
    .venv/bin/python -m bench.scale --model ViT-B-32 --pretrained ''   # seeded random weights

The app runs the production way on loopback (private PostgreSQL and Redis in a temp folder,
gunicorn, Celery workers as separate processes with one task at a time each, as
``docker compose --scale worker=N`` would give), with production settings.

1. **Ingest**: a new user uploads the photos (realistic JPEGs from ``bench.photos``) with no
   worker running, so every message waits in Redis; then N workers start. Throughput is the
   photos over the time from the first claim (a worker has loaded its model and taken a batch
   of 16) to the last photo ready: worker start-up is outside it, reported apart. Meanwhile
   one person searches without pausing (through one web process): search p50/p95 while N
   workers ingest.
2. **Search**: no workers; gunicorn with P processes (4 threads each); ``--clients`` people
   search without pausing, each query new (text encode + ANN + page), for ``--seconds``.

Rounds alternate the order of the steps (1, 2, 3 then 3, 2, 1) so that drift in the machine's
load does not favour one step; the report gives each round, the median, and the ratio of each
step to the one before it, computed within a round. CPU busy is the whole machine's (from
/proc/stat) over the measured window: near 100% means the cores cap that step.
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
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import psycopg
import requests

from bench import photos as bench_photos
from bench.load import make_user, upload
from mediasearch.devstack import app_environment
from mediasearch.embedded import EmbeddedPostgres, EmbeddedRedis, free_port, wait_for_port

REPO = Path(__file__).resolve().parents[1]
PHOTO_DIR = Path("/tmp/mediasearch-bench/photos")
WORDS = (
    ("a red", "a blue", "a green", "a yellow", "a purple", "an orange", "a white", "a black"),
    ("circle", "square", "triangle", "star", "cross", "stripe", "house", "tree", "car", "dog"),
    ("at the top", "on the left", "on the right", "at the bottom", "in the middle",
     "on a striped background", "at sunset", "in the snow", "by the sea"),
)  # fmt: skip


def queries(seed: int) -> itertools.cycle:
    """Distinct text queries (720 of them) in a seeded order: each request is a new text."""
    texts = [" ".join(words) for words in itertools.product(*WORDS)]
    random.Random(seed).shuffle(texts)
    return itertools.cycle(texts)


class CpuMeter:
    """The whole machine's busy fraction between ``start()`` and ``stop()`` (/proc/stat)."""

    @staticmethod
    def _read() -> tuple[int, int]:
        with open("/proc/stat") as stat:
            values = [int(v) for v in stat.readline().split()[1:]]
        idle = values[3] + values[4]  # idle + iowait
        return sum(values) - idle, sum(values)

    def start(self) -> None:
        self.busy, self.total = self._read()

    def stop(self) -> float:
        busy, total = self._read()
        return (busy - self.busy) / max(total - self.total, 1)


def group_cpu_seconds(groups: list[int]) -> float:
    """CPU seconds used so far by every process in these process groups (each app process is
    started in a session of its own), reaped children included."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) in groups:
            total += sum(int(v) for v in fields[11:15])  # utime, stime, cutime, cstime
    return total / ticks


class App:
    """The app's processes: one gunicorn (P processes), N Celery workers, one database."""

    def __init__(self, folder: Path, *, model: str, pretrained: str) -> None:
        self.folder = folder
        self.postgres = EmbeddedPostgres(folder / "postgres")
        self.redis = EmbeddedRedis(folder / "redis")
        self.model, self.pretrained = model, pretrained
        self.web: subprocess.Popen | None = None
        self.workers: list[subprocess.Popen] = []
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = (folder / "app.log").open("ab")

    def start(self) -> None:
        self.postgres.start()
        self.postgres.create_database("mediasearch")
        self.redis.start()
        self.database_url = self.postgres.url("mediasearch")
        env = app_environment(self.folder, self.database_url, self.redis.url)
        env.update(
            DJANGO_DEBUG="0",
            DJANGO_SECURE_COOKIES="0",
            DJANGO_ALLOWED_HOSTS="127.0.0.1",
            MEDIASEARCH_CLIP_MODEL=self.model,
            MEDIASEARCH_CLIP_PRETRAINED=self.pretrained,
            MEDIASEARCH_RATE_LIMITS="0",  # every simulated person shares one address
            MEDIASEARCH_MAX_FILES_PER_UPLOAD="100",
            # Tag text vectors are computed once per model (minutes for ViT-B-32): keep them.
            MEDIASEARCH_TAG_CACHE_DIR=os.environ.get(
                "MEDIASEARCH_TAG_CACHE_DIR", "/tmp/mediasearch-bench/tag-cache"
            ),
        )
        self.env = env
        for command in ("migrate", "collectstatic"):
            subprocess.run([sys.executable, "manage.py", command, "--no-input", "-v", "0"],
                           cwd=REPO, env=env, check=True)  # fmt: skip

    def manage(self, *args: str) -> str:
        return subprocess.run(
            [sys.executable, "manage.py", *args], cwd=REPO, env=self.env, check=True,
            capture_output=True, text=True,
        ).stdout  # fmt: skip

    def _spawn(self, args: list[str]) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, *args], cwd=REPO, env=self.env, stdout=self.log, stderr=self.log,
            start_new_session=True,
        )  # fmt: skip

    def start_web(self, processes: int, threads: int = 4) -> None:
        self.stop_web()
        self.web = self._spawn([
            "-m", "gunicorn", "mediasearch.wsgi", "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(processes), "--threads", str(threads), "--timeout", "120",
            "--no-control-socket",
        ])  # fmt: skip
        wait_for_port("127.0.0.1", self.port, 90, process=self.web, name="gunicorn")

    def start_workers(self, count: int) -> None:
        for index in range(count):
            self.workers.append(self._spawn([
                "-m", "celery", "-A", "mediasearch", "worker", "--loglevel=WARNING",
                "--concurrency=1", "-n", f"scale{index}@%h", "--without-gossip",
                "--without-mingle",
            ]))  # fmt: skip

    @staticmethod
    def _stop(process: subprocess.Popen) -> None:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()

    def stop_web(self) -> None:
        if self.web is not None:
            self._stop(self.web)
            self.web = None

    def stop_workers(self) -> None:
        for process in self.workers:
            self._stop(process)
        self.workers = []

    def statuses(self, owner: str, conn: psycopg.Connection | None = None) -> dict[str, int]:
        if conn is None:
            with psycopg.connect(self.database_url) as own:
                return self.statuses(owner, own)
        rows = conn.execute(
            "SELECT p.status, count(*) FROM search_photo p JOIN auth_user u "
            "ON u.id = p.owner_id WHERE u.username = %s GROUP BY p.status",
            [owner],
        ).fetchall()
        conn.commit()
        return dict(rows)

    def stop(self) -> None:
        self.stop_workers()
        self.stop_web()
        self.redis.stop()
        self.postgres.stop()


@dataclass
class Searches:
    """Latencies of searches sent by people who never pause, until ``stop`` is set."""

    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    stop: threading.Event = field(default_factory=threading.Event)

    def person(self, url: str, session: requests.Session, texts) -> None:
        while not self.stop.is_set():
            with self.lock:
                text = next(texts)
            started = time.perf_counter()
            try:
                ok = session.get(f"{url}/", params={"q": text}, timeout=60).status_code == 200
            except requests.RequestException:
                ok = False
            with self.lock:
                self.latencies.append((time.perf_counter() - started) * 1000)
                self.errors += not ok

    def run(self, url: str, sessions: list[requests.Session], texts) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.person, args=(url, s, texts)) for s in sessions]
        for thread in threads:
            thread.start()
        return threads

    def summary(self) -> dict:
        values = self.latencies or [float("nan")]
        return {"searches": len(self.latencies), "errors": self.errors,
                "p50_ms": float(np.percentile(values, 50)),
                "p95_ms": float(np.percentile(values, 95))}  # fmt: skip


def throughput(samples: list[tuple[float, int, int]], total: int) -> tuple[float, float]:
    """(photos per second, seconds until the first claim) from (seconds, pending, done)
    samples in time order: ``total`` photos over the time from the first claim (a worker has
    loaded its model and taken a batch) to the last photo done."""
    first_claim = next((t for t, pending, _ in samples if pending < total), None)
    end = next((t for t, _, done in samples if done >= total), None)
    if first_claim is None or end is None or end <= first_claim:
        raise ValueError("the samples do not cover the first claim to the last photo done")
    return total / (end - first_claim), first_claim


def ingest_step(app: App, workers: int, files: list[tuple[str, bytes]], step: int,
                probe: requests.Session | None, texts, timeout: float) -> dict:  # fmt: skip
    owner = f"ingest{step}"
    _, token = make_user(app, owner)
    for start in range(0, len(files), 20):
        upload(app, token, files[start : start + 20]).raise_for_status()
    assert app.statuses(owner) == {"pending": len(files)}, app.statuses(owner)
    probe_run = Searches()
    probe_threads = probe_run.run(app.url, [probe], texts) if probe else []
    cpu = CpuMeter()
    cpu.start()
    started = time.monotonic()
    app.start_workers(workers)
    samples: list[tuple[float, int, int]] = []
    groups = [process.pid for process in app.workers]
    cpu_at_claim = None
    with psycopg.connect(app.database_url) as conn:
        while True:
            counts = app.statuses(owner, conn)
            done = counts.get("ready", 0) + counts.get("failed", 0)
            samples.append((time.monotonic() - started, counts.get("pending", 0), done))
            if cpu_at_claim is None and counts.get("pending", 0) < len(files):
                cpu_at_claim = group_cpu_seconds(groups)
            if done >= len(files) or time.monotonic() - started > timeout:
                break
            time.sleep(0.2)
    worker_cpu = group_cpu_seconds(groups) - (cpu_at_claim or 0.0)
    busy = cpu.stop()
    probe_run.stop.set()
    for thread in probe_threads:
        thread.join()
    app.stop_workers()
    rate, startup = throughput(samples, len(files))
    return {
        "workers": workers, "photos": len(files), "ready": counts.get("ready", 0),
        "failed": counts.get("failed", 0), "all_done_s": samples[-1][0],
        "rate": rate, "startup_s": startup, "cpu_busy": busy,
        "worker_cpu_ms_per_photo": worker_cpu * 1000 / len(files),
        "loadavg": os.getloadavg()[0], "probe": probe_run.summary() if probe else None,
    }  # fmt: skip


def search_step(app: App, processes: int, sessions, texts, seconds: float) -> dict:
    app.start_web(processes)
    warm = Searches()
    # Every process loads its model at start (seconds, more on a busy machine): that is not
    # what a search costs, so it must be over before the measured window.
    threads = warm.run(app.url, sessions, texts)
    time.sleep(max(20.0, seconds / 2))
    warm.stop.set()
    for thread in threads:
        thread.join()
    run = Searches()
    cpu = CpuMeter()
    cpu.start()
    assert app.web is not None
    web_cpu, client_cpu = group_cpu_seconds([app.web.pid]), time.process_time()
    started = time.monotonic()
    threads = run.run(app.url, sessions, texts)
    time.sleep(seconds)
    run.stop.set()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    web_cpu = group_cpu_seconds([app.web.pid]) - web_cpu
    client_cpu = time.process_time() - client_cpu
    result = {"web_processes": processes, "seconds": wall, "cpu_busy": cpu.stop(),
              "loadavg": os.getloadavg()[0], **run.summary()}  # fmt: skip
    result["rps"] = result["searches"] / wall
    result["web_cpu_ms_per_search"] = web_cpu * 1000 / max(result["searches"], 1)
    result["client_cpu_ms_per_search"] = client_cpu * 1000 / max(result["searches"], 1)
    return result


def log_in_as(app: App, username: str, password: str) -> requests.Session:
    from tests.login import log_in

    session = requests.Session()
    session.headers["Connection"] = "close"
    return log_in(session, app.url, username=username, password=password)


def ratio_rows(rounds: list[dict[int, float]], steps: list[int]) -> list[str]:
    """Per step: the value in each round, the median, and the median of the within-round
    ratios to the step before."""
    lines = []
    for before, step in itertools.pairwise([None, *steps]):
        values = [r[step] for r in rounds]
        cells = ", ".join(f"{v:.2f}" for v in values)
        ratio = ""
        if before is not None:
            ratios = [r[step] / r[before] for r in rounds]
            ratio = f"**{np.median(ratios):.2f}x** ({', '.join(f'{v:.2f}' for v in ratios)})"
        lines.append(f"| {step} | {cells} | {np.median(values):.2f} | {ratio} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="MediaSearch-Demo")
    parser.add_argument("--pretrained", default="demo")
    parser.add_argument("--workers", default="1,2,3")
    parser.add_argument("--web", default="1,2", help="web process counts")
    parser.add_argument("--phone", type=int, default=16, help="12 MP photos per ingest step")
    parser.add_argument("--web-photos", type=int, default=176, help="1.2 MP photos per step")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8, help="people searching at once")
    parser.add_argument("--seconds", type=float, default=30, help="per search step")
    parser.add_argument("--no-probe", action="store_true", help="no search during ingest")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.phone, args.web_photos, args.seconds = 1, 4, 60, 10
    worker_steps = [int(v) for v in args.workers.split(",")]
    web_steps = [int(v) for v in args.web.split(",")]
    paths = bench_photos.photo_set(PHOTO_DIR, phone=args.phone, web=args.web_photos)
    files = [(path.name, path.read_bytes()) for path in paths]
    random.Random(3).shuffle(files)

    # A stopped benchmark stops the app's processes too (they run in sessions of their own).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    folder = Path(tempfile.mkdtemp(prefix="mediasearch-scale-"))
    app = App(folder, model=args.model, pretrained=args.pretrained)
    texts = queries(1)
    print(f"{os.cpu_count()} cores, model {args.model} ({args.pretrained or 'random init'}); "
          f"load average before: {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    try:
        app.start()
        app.start_web(1)
        # Warm-up (not timed): the first batch of a model computes its tag text vectors.
        ingest_step(app, 1, files[:4], 0, None, texts, timeout=900)
        ingest_rounds: list[dict[int, dict]] = []
        step = 0
        for round_index in range(args.rounds):
            order = worker_steps if round_index % 2 == 0 else worker_steps[::-1]
            results = {}
            for workers in order:
                step += 1
                probe = None if args.no_probe else log_in_as(app, "ingest0", "load-test-ingest0")
                results[workers] = ingest_step(app, workers, files, step, probe, texts, 900)
                r = results[workers]
                print(f"round {round_index + 1}, {workers} worker(s): {r['rate']:.2f} photos/s "
                      f"(all {r['photos']} in {r['all_done_s']:.1f} s, first claim after "
                      f"{r['startup_s']:.1f} s, {r['failed']} failed), "
                      f"CPU busy {r['cpu_busy']:.0%}, load {r['loadavg']:.1f}, worker CPU "
                      f"{r['worker_cpu_ms_per_photo']:.0f} ms/photo"
                      + (f"; search meanwhile p50 {r['probe']['p50_ms']:.0f} / p95 "
                         f"{r['probe']['p95_ms']:.0f} ms" if r["probe"] else ""),
                      flush=True)  # fmt: skip
            ingest_rounds.append(results)

        # Search as the owner of one ingest step's photos (a library of that many photos).
        sessions = [log_in_as(app, "ingest1", "load-test-ingest1") for _ in range(args.clients)]
        search_rounds: list[dict[int, dict]] = []
        for round_index in range(args.rounds):
            order = web_steps if round_index % 2 == 0 else web_steps[::-1]
            results = {}
            for processes in order:
                results[processes] = search_step(app, processes, sessions, texts, args.seconds)
                r = results[processes]
                print(f"round {round_index + 1}, {processes} web process(es): {r['rps']:.1f} "
                      f"searches/s, p50 {r['p50_ms']:.0f} / p95 {r['p95_ms']:.0f} ms, "
                      f"{r['errors']} errors, CPU busy {r['cpu_busy']:.0%}, web CPU "
                      f"{r['web_cpu_ms_per_search']:.0f} ms/search, client "
                      f"{r['client_cpu_ms_per_search']:.0f}",
                      flush=True)  # fmt: skip
            search_rounds.append(results)

        print(f"\n### Ingest, {len(files)} photos a step ({args.phone} x 12 MP, "
              f"{args.web_photos} x 1.2 MP), model {args.model}\n")  # fmt: skip
        print("| workers | photos/s per round | median | vs the step before (rounds) |")
        print("|---|---|---|---|")
        rates = [{w: r[w]["rate"] for w in worker_steps} for r in ingest_rounds]
        print("\n".join(ratio_rows(rates, worker_steps)))
        cores = os.cpu_count() or 1
        print("\n| workers | worker CPU ms per photo (median) | what the cores allow, photos/s "
              "| machine CPU busy | search meanwhile p50 / p95 ms | failed |")  # fmt: skip
        print("|---|---|---|---|---|---|")
        for w in worker_steps:
            rows = [r[w] for r in ingest_rounds]
            probe = "" if args.no_probe else (
                f"{np.median([x['probe']['p50_ms'] for x in rows]):.0f} / "
                f"{np.median([x['probe']['p95_ms'] for x in rows]):.0f}")  # fmt: skip
            per_photo = float(np.median([x["worker_cpu_ms_per_photo"] for x in rows]))
            print(f"| {w} | {per_photo:.0f} | {cores * 1000 / per_photo:.1f} | "
                  f"{np.median([x['cpu_busy'] for x in rows]):.0%} | {probe} | "
                  f"{sum(x['failed'] for x in rows)} |")  # fmt: skip

        print(f"\n### Search, {args.clients} people searching without pause, new query each\n")
        print("| web processes | searches/s per round | median | vs the step before (rounds) |")
        print("|---|---|---|---|")
        rps = [{p: r[p]["rps"] for p in web_steps} for r in search_rounds]
        print("\n".join(ratio_rows(rps, web_steps)))
        print("\n| web processes | p50 ms | p95 ms | web CPU ms per search | client CPU ms "
              "per search | what the cores allow, searches/s | machine CPU busy "
              "| errors |")  # fmt: skip
        print("|---|---|---|---|---|---|---|---|")
        for p in web_steps:
            rows = [r[p] for r in search_rounds]
            per_search = float(np.median([x["web_cpu_ms_per_search"] for x in rows]))
            print(f"| {p} | {np.median([x['p50_ms'] for x in rows]):.0f} | "
                  f"{np.median([x['p95_ms'] for x in rows]):.0f} | {per_search:.1f} | "
                  f"{np.median([x['client_cpu_ms_per_search'] for x in rows]):.1f} | "
                  f"{cores * 1000 / per_search:.0f} | "
                  f"{np.median([x['cpu_busy'] for x in rows]):.0%} | "
                  f"{sum(x['errors'] for x in rows)} |")  # fmt: skip
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        app.stop()
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
