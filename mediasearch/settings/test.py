"""Test settings: the real stack (PostgreSQL + pgvector, Redis), embedded unless URLs are given.

Values are placed in ``os.environ`` before the shared settings read them, so a Celery worker
process started by a test (which inherits the environment) is configured identically.
"""

import os
from pathlib import Path

_var_dir = Path(
    os.environ.setdefault(
        "MEDIASEARCH_VAR_DIR", str(Path(__file__).resolve().parents[2] / "var" / "test")
    )
)
_var_dir.mkdir(parents=True, exist_ok=True)
os.environ.setdefault("DJANGO_SECRET_KEY", "insecure-key-for-tests-only")
os.environ.setdefault("MEDIASEARCH_MEDIA_ROOT", str(_var_dir / "media"))
# The small model the project ships; the real default (ViT-B-32 from the hub) needs a network.
os.environ.setdefault("MEDIASEARCH_CLIP_MODEL", "MediaSearch-Demo")
os.environ.setdefault("MEDIASEARCH_CLIP_PRETRAINED", "demo")
# torch, the reference: the suite would otherwise export the demo model (about a minute) in a
# clean clone. The backends have their own tests (tests/workers/embedding/test_backends.py).
os.environ.setdefault("MEDIASEARCH_CLIP_BACKEND", "torch")
# OCR messages are sent only by the tests that read text (tests/search/text/).
os.environ.setdefault("MEDIASEARCH_OCR_ENABLED", "0")

if not (os.environ.get("DATABASE_URL") and os.environ.get("REDIS_URL")):
    from mediasearch.embedded import start_for_tests

    start_for_tests(_var_dir)

from mediasearch.settings.base import *  # noqa: E402

STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # whitenoise warns about a missing folder
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES["staticfiles"] = {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
SESSION_COOKIE_SECURE = False
CSRF_COOKIE_SECURE = False
SECURE_SSL_REDIRECT = False
SECURE_HSTS_SECONDS = 0
# The suite makes many requests from one address; tests/search/web/test_rate_limits.py turns it on.
MEDIASEARCH_RATE_LIMITS_ENABLED = False
