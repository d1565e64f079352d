"""Fixtures shared by every test: users, images, and a real Celery worker process.

The database and Redis are real (embedded unless DATABASE_URL/REDIS_URL are set; see
``mediasearch.settings.test``).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from PIL import Image, ImageDraw

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


@pytest.fixture(autouse=True)
def _fresh_index_cache():
    from search.vector_index import forget_known_indexes

    forget_known_indexes()


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


@pytest.fixture
def celery_worker(transactional_db, settings) -> Iterator[subprocess.Popen]:
    """A real ``celery worker`` process on the test database, the same Redis and media folder.

    Redis is flushed first so that messages left by earlier tests do not leak in.
    """
    import redis

    from mediasearch.celery import app

    redis.Redis.from_url(settings.REDIS_URL).flushdb()
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "mediasearch.settings.test",
        "DATABASE_URL": test_database_url(),
        "MEDIASEARCH_MEDIA_ROOT": settings.MEDIA_ROOT,
        "PYTHONUNBUFFERED": "1",
    }
    hostname = f"test-worker-{os.getpid()}-{time.monotonic_ns()}@localhost"
    log_path = Path(settings.MEDIA_ROOT).parent / "worker.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "mediasearch", "worker", "--loglevel=INFO",
         "--concurrency=1", "--without-gossip", "--without-mingle", "-n", hostname],
        cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while not app.control.ping(destination=[hostname], timeout=0.5):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the Celery worker did not start:\n" + log_path.read_text())
        yield process
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


def wait_for(predicate, *, timeout: float, interval: float = 0.25, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(message or "condition not met in time")
