"""The engine of this process: loaded on first use, once, then shared by every request or task.

Reads Django settings (not the ORM). The web process uses it to encode queries, each Celery
worker process to encode photos; neither loads anything at import time.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path

from django.conf import settings

from workers.embedding.model import ClipEngine, ModelSpec, load_engine_with_fallback
from workers.embedding.tags import (
    DEMO_VOCABULARY,
    GENERAL_VOCABULARY,
    Tagger,
    TagVocabulary,
    load_vocabulary,
    tagger_for,
)

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


def vocabulary_path(engine: ClipEngine) -> Path:
    """The configured tag vocabulary, or the shipped one that suits ``engine``."""
    if settings.MEDIASEARCH_TAG_VOCABULARY:
        return Path(settings.MEDIASEARCH_TAG_VOCABULARY)
    return DEMO_VOCABULARY if engine.is_demo else GENERAL_VOCABULARY


def active_vocabulary(engine: ClipEngine) -> TagVocabulary:
    """The tag vocabulary for ``engine``, read now (edits apply at once). Raises
    ``VocabularyError``."""
    return load_vocabulary(vocabulary_path(engine))


def get_tagger(engine: ClipEngine) -> Tagger:
    """The tagger of the active vocabulary under ``engine``; its text vectors are computed once
    per process (or read from ``MEDIASEARCH_TAG_CACHE_DIR``). Raises ``VocabularyError``."""
    return tagger_for(
        engine, active_vocabulary(engine), cache_dir=settings.MEDIASEARCH_TAG_CACHE_DIR or None
    )
