"""The engine of this process: loaded on first use, once, then shared by every request or task.

Reads Django settings (not the ORM). The web process uses it to encode queries, each Celery
worker process to encode photos; neither loads anything at import time.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.conf import settings

from workers.embedding.model import (
    ClipEngine,
    ModelSpec,
    check_spec,
    load_engine,
    load_engine_with_fallback,
)
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
# The engines this process has loaded, oldest first: the active model's and, during a model
# switch, the incoming one's. Older ones are let go so that memory does not keep growing.
_engines: dict[ModelSpec, ClipEngine] = {}
_KEEP_ENGINES = 2
_torch_threads: int | None = None


def use_torch_threads(count: int) -> None:
    """Run this process's model on ``count`` threads (torch's intra-op pool; 0: one per core).

    Web processes encode one short query at a time, many requests at once: one thread each
    (``MEDIASEARCH_TORCH_THREADS``). A pool of threads that outnumbers the free cores stalls
    at every barrier: a 2 ms query encode took 200 ms while another process kept one of two
    cores busy. Workers run large batches and call this at start with
    ``MEDIASEARCH_WORKER_TORCH_THREADS``.
    """
    global _torch_threads
    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    torch.set_num_threads(count if count > 0 else cores or 1)
    _torch_threads = count


_spec_provider: Callable[[], ModelSpec] | None = None


def configured_spec() -> ModelSpec:
    return ModelSpec(
        settings.MEDIASEARCH_CLIP_MODEL,
        settings.MEDIASEARCH_CLIP_PRETRAINED,
        settings.MEDIASEARCH_CLIP_PRECISION,
    )


def set_active_spec_provider(provider: Callable[[], ModelSpec]) -> None:
    """Let the app say which model is active (a model chosen on the dashboard); without a
    provider it is the configured one. Kept as a hook so this module needs no ORM."""
    global _spec_provider
    _spec_provider = provider


def active_spec() -> ModelSpec:
    return _spec_provider() if _spec_provider is not None else configured_spec()


def _models_dir_for(spec: ModelSpec) -> str | None:
    """Where ``spec``'s checkpoint may come from: anywhere for the operator's own configured
    model, only ``MEDIASEARCH_MODELS_DIR`` for one chosen on the dashboard."""
    return None if spec == configured_spec() else settings.MEDIASEARCH_MODELS_DIR


def check_chosen_spec(spec: ModelSpec) -> None:
    """Refuse at once a model this process would not load (``engine_for`` checks the same).

    Raises ``ModelLoadError`` with the reason: see ``workers.embedding.model.check_spec``.
    """
    check_spec(spec, models_dir=_models_dir_for(spec))


def get_engine() -> ClipEngine:
    """Return this process's engine for the active model, loading it on first use.

    The configured model falls back to the shipped demo model when it cannot be loaded.
    """
    return engine_for(active_spec())


def engine_for(spec: ModelSpec) -> ClipEngine:
    """The engine for ``spec``, loaded once per process. Only the configured model may fall
    back to the demo model; any other raises ``ModelLoadError`` when it cannot be loaded."""
    engine = _engines.get(spec)
    if engine is not None:
        return engine
    with _lock:
        engine = _engines.get(spec)
        if engine is None:
            if _torch_threads is None:  # a worker has set its own already
                use_torch_threads(settings.MEDIASEARCH_TORCH_THREADS)
            options: dict[str, Any] = {
                "device": settings.MEDIASEARCH_CLIP_DEVICE,
                "cache_dir": settings.MEDIASEARCH_CLIP_CACHE_DIR,
                "backend": settings.MEDIASEARCH_CLIP_BACKEND,
                "export_cache_dir": settings.MEDIASEARCH_CLIP_EXPORT_DIR or None,
                "gpu_precision": settings.MEDIASEARCH_CLIP_GPU_PRECISION,
            }
            if spec == configured_spec():
                engine = load_engine_with_fallback(spec, **options)
            else:
                engine = load_engine(spec, models_dir=_models_dir_for(spec), **options)
            _engines[spec] = engine
            while len(_engines) > _KEEP_ENGINES:
                del _engines[next(iter(_engines))]
    return engine


_preloading: set[ModelSpec] = set()


def preload_in_background(spec: ModelSpec) -> None:
    """Load ``spec``'s engine in a daemon thread unless it is loaded or loading: a web process
    does this for the model a switch is building, so that its first search after the switch
    does not wait for a load (and an export)."""
    with _lock:
        if spec in _engines or spec in _preloading:
            return
        _preloading.add(spec)

    def load() -> None:
        try:
            engine_for(spec)
        except Exception:  # the worker that prepares the switch records why
            logger.warning("could not preload %s", spec, exc_info=True)
        finally:
            _preloading.discard(spec)

    threading.Thread(target=load, name="clip-preload", daemon=True).start()


def loaded_engine() -> ClipEngine | None:
    """The active model's engine if this process has loaded it already; never loads one."""
    return _engines.get(active_spec())


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


def warm_tagger_in_background(engine: ClipEngine) -> threading.Thread:
    """Compute (or read from the cache) the tag vocabulary's text vectors under ``engine`` in a
    daemon thread, so that the first photo after a start or a model switch does not wait for
    them. A photo that arrives sooner waits for this thread's result (``tagger_for``'s lock),
    never for a second computation."""

    def build() -> None:
        try:
            get_tagger(engine)
        except Exception:  # a bad vocabulary: the photo's own tagging reports it
            logger.warning("could not compute the tag vectors ahead", exc_info=True)

    thread = threading.Thread(target=build, name="tag-vectors", daemon=True)
    thread.start()
    return thread
