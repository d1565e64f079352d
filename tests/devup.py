"""The app started the README way, ``./dev up`` with its own data folder on a free port, and the
ordinary use of it that a person's browser makes. For the tests that need the app whole (the
browser tests, ``tests/integration/``) and for ``bench/soak_devup.py``."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import requests

from mediasearch.devstack import REPO_ROOT
from mediasearch.embedded import EmbeddedPostgres, free_port
from tests.login import log_in


class DevUpError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunningApp:
    url: str
    admin_password: str
    var: Path
    log: Path

    def database_url(self, database: str = "mediasearch") -> str:
        """The app's embedded PostgreSQL server, to look at from the test."""
        return EmbeddedPostgres.running_url(self.var / "postgres", database)

    def logged_in_session(self) -> requests.Session:
        """A ``requests`` session logged in as admin through the login page."""
        return log_in(
            OneConnectionPerRequest(), self.url, username="admin", password=self.admin_password
        )


class OneConnectionPerRequest(requests.Session):
    """A session (cookies kept) that opens a new connection for every request.

    A kept-alive connection that the server closes just as it is reused fails in ``requests``
    (browsers retry it): an error of the client's, not the app's.
    """

    def __init__(self) -> None:
        super().__init__()
        self.headers["Connection"] = "close"

    def request(self, *args, **kwargs) -> requests.Response:
        try:
            return super().request(*args, **kwargs)
        finally:
            self.close()  # the connection pools; cookies stay


@contextmanager
def dev_up(var: Path, *args: str, timeout: float = 180, **env: str) -> Iterator[RunningApp]:
    """Run ``./dev up --port <free port> *args`` with its data in ``var``; stop it afterwards.

    ``env`` is added to this process's environment, less the URLs of the test's own services:
    the app starts its own, as ``./dev up`` does on a fresh machine. Raises ``DevUpError`` with
    the end of its output when it does not start within ``timeout`` seconds.
    """
    port = free_port()
    log = var / "dev-up.log"
    environment = {
        **os.environ,
        "MEDIASEARCH_VAR_DIR": str(var),
        # The shipped model directly: the fallback would first wait for the hub to time out.
        "MEDIASEARCH_CLIP_MODEL": "MediaSearch-Demo",
        "MEDIASEARCH_CLIP_PRETRAINED": "demo",
        **env,
    }
    for name in ("DATABASE_URL", "REDIS_URL", "DJANGO_SETTINGS_MODULE"):
        environment.pop(name, None)
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(REPO_ROOT / "dev"), "up", "--port", str(port), *args],
            cwd=REPO_ROOT,
            env=environment,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + timeout
        while "MediaSearch is running" not in log.read_text(errors="replace"):
            if process.poll() is not None or time.monotonic() > deadline:
                tail = log.read_text(errors="replace")[-3000:]
                raise DevUpError(f"./dev up did not start:\n{tail}")
            time.sleep(0.5)
        yield RunningApp(
            url=f"http://127.0.0.1:{port}",
            admin_password=(var / "admin_password").read_text().strip(),
            var=var,
            log=log,
        )
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


class BackendCounter(threading.Thread):
    """Counts the client backends connected to the app's database every ``interval`` seconds,
    from a connection to another database (so it does not count itself)."""

    def __init__(self, app: RunningApp, interval: float = 0.2):
        super().__init__(daemon=True)
        self.url = app.database_url("postgres")
        self.interval = interval
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
                self.done.wait(self.interval)

    def stop(self) -> list[int]:
        self.done.set()
        self.join(10)
        return self.counts


QUERIES = [
    "two red circles on a blue background",
    "a green square",
    "yellow stars on a black background",
    "a white cross on the left",
    "three purple triangles",
]


@dataclass
class OrdinaryUse:
    """What a person's browser asks of the app: the upload page's status polling (45%), page
    loads, a photo page and the stylesheet (30%), searches (25%), and an upload every
    ``upload_every`` requests, which the worker then embeds. Every answer is recorded, from
    many threads."""

    app: RunningApp
    upload_every: int = 100
    statuses: Counter = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    transport_errors: list[str] = field(default_factory=list)
    photo_ids: list[int] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    stylesheet: str = ""

    def look_up_stylesheet(self, session: requests.Session) -> None:
        """Find the stylesheet's address (hashed without debug) on the home page."""
        home = session.get(f"{self.app.url}/", timeout=60).text
        self.stylesheet = re.search(r'href="(/static/css/app[^"]*\.css)"', home).group(1)

    def send(self, session: requests.Session, rng: random.Random, number: int) -> None:
        """Request number ``number`` of the mix, as the person logged in on ``session``."""
        try:
            response = self._request(session, rng, number)
        except requests.RequestException as error:
            with self.lock:
                self.transport_errors.append(f"#{number}: {error!r}")
            return
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500:
                self.server_errors.append(
                    f"#{number} {response.request.method} {response.request.path_url} "
                    f"{response.status_code}: {response.text[:300]!r}"
                )

    def _request(self, session, rng: random.Random, number: int) -> requests.Response:
        url = self.app.url
        with self.lock:
            known = list(self.photo_ids)
        if number % self.upload_every == 0 or not known:
            response = session.post(
                f"{url}/upload/",
                files=[("photos", (f"use-{number}.jpg", scene_jpeg(number), "image/jpeg"))],
                data={"csrfmiddlewaretoken": session.cookies["csrftoken"]},
                headers={"Accept": "application/json", "Referer": f"{url}/upload/"},
                timeout=60,
            )
            if response.status_code == 200:
                with self.lock:
                    self.photo_ids += [r["photo"]["id"] for r in response.json()["results"]]
            return response
        roll = rng.random()
        if roll < 0.45:
            ids = rng.sample(known, min(len(known), 10))
            return session.get(f"{url}/photos/status/", params={"id": ids}, timeout=60)
        if roll < 0.75:
            path = rng.choice(
                ["/", "/photos/", "/upload/", "/albums/", f"/photos/{rng.choice(known)}/",
                 self.stylesheet]
            )  # fmt: skip
            return session.get(f"{url}{path}", timeout=60)
        return session.get(f"{url}/", params={"q": rng.choice(QUERIES)}, timeout=60)

    def wait_until_processed(self, session: requests.Session, timeout: float) -> dict[str, int]:
        """How many uploaded photos ended in each state, once none is pending or processing
        (or ``timeout`` seconds have passed)."""
        deadline = time.monotonic() + timeout
        while True:
            states: Counter = Counter()
            for start in range(0, len(self.photo_ids), 50):
                batch = self.photo_ids[start : start + 50]
                response = session.get(f"{self.app.url}/photos/status/", params={"id": batch})
                states.update(photo["status"] for photo in response.json()["photos"])
            if not (states["pending"] or states["processing"]) or time.monotonic() > deadline:
                return dict(states)
            time.sleep(1)


def scene_jpeg(seed: int) -> bytes:
    """A distinct generated scene (no two uploads are duplicates of each other)."""
    from workers.embedding.demo.scenes import random_scene, scene_jpeg

    rng = random.Random(seed)
    return scene_jpeg(random_scene(rng), rng)
