"""Fixtures shared by every test: users, images, a real Celery worker process, and S3.

The database and Redis are real (embedded unless DATABASE_URL/REDIS_URL are set; see
``mediasearch.settings.test``). Files go to a folder of each test's own, or, for a test that asks
for ``s3_storage``, to a bucket of its own on a real SeaweedFS server (``s3_server``).
"""

from __future__ import annotations

import base64
import io
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.conf import settings as django_settings
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

from mediasearch.embedded import EmbeddedS3

REPO_ROOT = Path(__file__).resolve().parents[1]


def make_image(
    *,
    background: str = "white",
    shape: str = "circle",
    color: str = "red",
    size: tuple[int, int] = (320, 240),
) -> Image.Image:
    """A simple scene: one coloured shape on a plain background."""
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    w, h = size
    box = (w * 0.3, h * 0.25, w * 0.7, h * 0.75)
    if shape == "circle":
        draw.ellipse(box, fill=color)
    elif shape == "square":
        draw.rectangle(box, fill=color)
    else:
        draw.polygon([(w * 0.5, h * 0.2), (w * 0.25, h * 0.8), (w * 0.75, h * 0.8)], fill=color)
    return image


def encode(image: Image.Image, format: str = "JPEG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=format, **params)
    return buffer.getvalue()


def upload_file(name: str, data: bytes, content_type: str = "image/jpeg") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


@pytest.fixture(autouse=True)
def _media_in_tmp(settings, tmp_path):
    """Each test stores files in its own folder (the worker fixture passes it on)."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": settings.MEDIA_ROOT},
        },
    }


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[EmbeddedS3]:
    """One SeaweedFS server (S3 gateway) for the session, started by the first test that asks
    for it; each test gets a bucket of its own through ``s3_storage``."""
    server = EmbeddedS3(tmp_path_factory.mktemp("s3"))
    server.start()
    try:
        yield server
    finally:
        server.stop(crash=True)  # its data is the session's temporary folder: no need to wait


TEST_BUCKET = "mediasearch-tests"


@dataclass
class S3Bucket:
    """Where a test's files go on the session's S3 server: a prefix of its own in the tests'
    bucket (SeaweedFS gives each bucket volumes of its own, so a bucket per test would not
    scale to a suite)."""

    server: EmbeddedS3
    name: str
    prefix: str

    def object_names(self) -> set[str]:
        """The keys this test stored, as the storage API names them."""
        return self.server.object_names(self.name, self.prefix)

    def environment(self) -> dict[str, str]:
        return self.server.environment(self.name, self.prefix)


@pytest.fixture
def s3_storage(s3_server, settings, _media_in_tmp) -> S3Bucket:
    """This test stores every file on the embedded S3 server, under a fresh prefix, through the
    same settings as ``MEDIASEARCH_STORAGE=s3``; a Celery worker the test starts does too."""
    from mediasearch.settings.storage import s3_storage_settings

    s3_server.start()  # a fault test of an earlier test may have left it stopped
    bucket = S3Bucket(s3_server, TEST_BUCKET, f"test-{os.getpid()}-{time.monotonic_ns()}")
    s3_server.create_bucket(bucket.name)
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3_storage_settings(bucket.environment()),
    }
    return bucket


@pytest.fixture
def storage_backend(request) -> S3Bucket | None:
    """Local files, or with ``BOTH_STORAGES`` also a bucket on the embedded S3 server."""
    if getattr(request, "param", "local") == "s3":
        return request.getfixturevalue("s3_storage")
    return None


# Runs a test once on local files and once on S3 (tests whose fixtures store files should take
# ``storage_backend`` before those fixtures).
BOTH_STORAGES = pytest.mark.parametrize("storage_backend", ["local", "s3"], indirect=True)


def storage_environment() -> dict[str, str]:
    """The variables that give a process this test's storage (its folder, or its bucket)."""
    options = django_settings.STORAGES["default"].get("OPTIONS", {})
    if "bucket_name" not in options:
        return {
            "MEDIASEARCH_STORAGE": "local",
            "MEDIASEARCH_MEDIA_ROOT": django_settings.MEDIA_ROOT,
        }
    return {
        "MEDIASEARCH_STORAGE": "s3",
        "MEDIASEARCH_MEDIA_ROOT": django_settings.MEDIA_ROOT,
        "MEDIASEARCH_S3_BUCKET": options["bucket_name"],
        "MEDIASEARCH_S3_PREFIX": options["location"],
        "MEDIASEARCH_S3_ENDPOINT_URL": options["endpoint_url"],
        "MEDIASEARCH_S3_REGION": options["region_name"],
        "MEDIASEARCH_S3_ACCESS_KEY_ID": options["access_key"],
        "MEDIASEARCH_S3_SECRET_ACCESS_KEY": options["secret_key"],
        "MEDIASEARCH_S3_ADDRESSING_STYLE": "path",
    }


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    from search.dashboard.selectors import forget_workers_answer
    from search.ingest.active_model import forget_active_spec
    from search.photos.changes import forget_search_choices
    from search.retrieval.vector_index import forget_known_indexes

    forget_known_indexes()
    forget_active_spec()  # each test's database says for itself which model is active
    forget_workers_answer()  # the dashboard's cached answer of another test's workers
    forget_search_choices()  # filter choices cached in Redis outlive each test's database


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-password-1")


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-password-1")


@pytest.fixture
def staff(django_user_model):
    return django_user_model.objects.create_user(
        "staff", password="staff-password-1", is_staff=True
    )


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


def test_database_url() -> str:
    """``DATABASE_URL`` pointing at the database pytest-django created for this run."""
    from django.db import connection

    parts = urlsplit(os.environ["DATABASE_URL"])
    return urlunsplit(parts._replace(path="/" + connection.settings_dict["NAME"]))


test_database_url.__test__ = False  # a helper, not a test


class CeleryProcesses:
    """Starts real ``celery worker``/``beat`` processes for a test and stops them afterwards."""

    def __init__(self, settings, log_dir: Path):
        self.settings = settings
        self.log_dir = log_dir
        self.started: list[subprocess.Popen] = []
        self._logs: dict[int, Path] = {}

    def environment(self, **extra: str) -> dict[str, str]:
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "mediasearch.settings.test",
            "DATABASE_URL": test_database_url(),
            **storage_environment(),
            "PYTHONUNBUFFERED": "1",
            **extra,
        }

    def worker(self, *, queues: list[str] | None = None, **extra_env: str) -> subprocess.Popen:
        """A worker with one pool process, taking ``queues`` (every queue unless given);
        returns once it answers a ping."""
        from mediasearch.celery import app

        hostname = f"test-worker-{os.getpid()}-{time.monotonic_ns()}@localhost"
        queues = list(self.settings.MEDIASEARCH_QUEUES) if queues is None else queues
        process = self._spawn(
            ["worker", "-Q", ",".join(queues), "--loglevel=INFO", "--concurrency=1",
             "--without-gossip",
             "--without-mingle", "-n", hostname],
            hostname, extra_env,
        )  # fmt: skip
        deadline = time.monotonic() + 90
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start:\n" + self.log(process))
        return process

    def beat(self, **extra_env: str) -> subprocess.Popen:
        schedule = self.log_dir / f"beat-{time.monotonic_ns()}"
        return self._spawn(
            ["beat", "--loglevel=INFO", "--schedule", str(schedule)], "beat", extra_env
        )

    def log(self, process: subprocess.Popen) -> str:
        return self._logs[process.pid].read_text()

    def _spawn(self, args: list[str], name: str, extra_env: dict[str, str]) -> subprocess.Popen:
        log_path = self.log_dir / f"{name.split('@')[0]}.log"
        with log_path.open("ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "mediasearch", *args],
                cwd=REPO_ROOT, env=self.environment(**extra_env), stdout=log,
                stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip
        self._logs[process.pid] = log_path
        self.started.append(process)
        return process

    def kill(self, process: subprocess.Popen) -> None:
        """SIGKILL the whole process group (parent and pool), as a crash would."""
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def stop_all(self) -> None:
        for process in self.started:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.started:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


@pytest.fixture
def celery_processes(transactional_db, settings, tmp_path) -> Iterator[CeleryProcesses]:
    """Real Celery processes on the test database. Redis is flushed first so that messages
    left by earlier tests do not leak in."""
    import redis

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    processes = CeleryProcesses(settings, tmp_path)
    try:
        yield processes
    finally:
        processes.stop_all()


@pytest.fixture
def celery_worker(celery_processes) -> subprocess.Popen:
    """One real ``celery worker`` process, ready to take tasks."""
    return celery_processes.worker()


@pytest.fixture
def queued():
    """What this test sent to the broker, as (task name, args): queue by queue in the order of
    the settings' table, oldest first in each; the queues are emptied first."""
    import redis

    broker = redis.Redis.from_url(django_settings.REDIS_URL)
    queues = list(django_settings.MEDIASEARCH_QUEUES)
    broker.delete(*queues)

    def messages() -> list[tuple[str, list]]:
        raw = [
            json.loads(item) for queue in queues for item in reversed(broker.lrange(queue, 0, -1))
        ]
        return [
            (item["headers"]["task"], json.loads(base64.b64decode(item["body"]))[0]) for item in raw
        ]

    return messages


def wait_for(predicate, *, timeout: float, interval: float = 0.25, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message or "condition not met in time")
