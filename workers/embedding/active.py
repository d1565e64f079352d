"""The engine of this process: loaded on first use, once, then shared by every request or task.

Reads Django settings (not the ORM). The web process uses it to encode queries, each Celery
worker process to encode photos; neither loads anything at import time.
"""

from __future__ import annotations

import logging
import threading

from django.conf import settings

from workers.embedding.model import ClipEngine, ModelSpec, load_engine_with_fallback

logger = logging.getLogger(__name__)
_lock = threading.Lock()
_engine: ClipEngine | None = None


def configured_spec() -> ModelSpec:
    return ModelSpec(settings.MEDIASEARCH_CLIP_MODEL, settings.MEDIASEARCH_CLIP_PRETRAINED)


def get_engine() -> ClipEngine:
    """Return this process's engine, loading it (with the demo fallback) on the first call."""
    global _engine
    if _engine is None:
        with _lock:
            if _engine is None:
                _engine = load_engine_with_fallback(
                    configured_spec(),
                    device=settings.MEDIASEARCH_CLIP_DEVICE,
                    cache_dir=settings.MEDIASEARCH_CLIP_CACHE_DIR,
                )
    return _engine


def loaded_engine() -> ClipEngine | None:
    """The engine if this process has loaded it already; never triggers a load."""
    return _engine


def warm_up_in_background() -> None:
    """Start loading the engine in a daemon thread (web servers call this once at start)."""
    if not settings.MEDIASEARCH_WARM_UP:
        return

    def load() -> None:
        try:
            get_engine()
        except Exception:
            logger.exception("could not load any CLIP model; searches will fail until fixed")

    threading.Thread(target=load, name="clip-warm-up", daemon=True).start()
