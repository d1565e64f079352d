"""A private MediaSearch stack for benchmarks: embedded PostgreSQL and Redis in a temp folder.

Call ``start()`` before importing anything that touches Django models. The model is chosen with
the usual environment variables (``MEDIASEARCH_CLIP_MODEL``/``_PRETRAINED``), set by the caller.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import time
from contextlib import contextmanager


def start(*, model: str, pretrained: str) -> None:
    if "MEDIASEARCH_VAR_DIR" not in os.environ:
        folder = tempfile.mkdtemp(prefix="mediasearch-bench-")
        os.environ["MEDIASEARCH_VAR_DIR"] = folder
        # Registered before the embedded servers' own exit hooks, so it runs after they stop.
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    # Tag text vectors are computed once per model (minutes for ViT-B-32 on 2 cores): keep them.
    os.environ.setdefault("MEDIASEARCH_TAG_CACHE_DIR", "/tmp/mediasearch-bench/tag-cache")
    # Exported graphs (a minute or more per model on 2 cores) are kept between runs too.
    os.environ.setdefault("MEDIASEARCH_CLIP_EXPORT_DIR", "/tmp/mediasearch-bench/clip-export")
    os.environ.setdefault("MEDIASEARCH_CLIP_BACKEND", "auto")
    os.environ["MEDIASEARCH_CLIP_MODEL"] = model
    os.environ["MEDIASEARCH_CLIP_PRETRAINED"] = pretrained
    os.environ["DJANGO_SETTINGS_MODULE"] = "mediasearch.settings.test"
    os.environ.setdefault("MEDIASEARCH_WARM_UP", "0")
    os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,127.0.0.1,localhost")
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)


class QueryTimer:
    """Sums the wall time of every SQL statement run inside ``measuring()``."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.queries = 0

    def __call__(self, execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1

    @contextmanager
    def measuring(self):
        from django.db import connection

        with connection.execute_wrapper(self):
            yield self


def percentile(values, q: float) -> float:
    import numpy as np

    return float(np.percentile(np.asarray(values, dtype=np.float64), q))
