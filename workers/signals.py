"""Worker process start-up: load the model in each pool process, never in the parent.

The parent forks the pool; a model (and any CUDA context) created before the fork would be
shared or broken. Loading in each child at start logs which model it runs (or why it fell back
to the demo model) and spares the first task the wait.
"""

import logging
import os

from celery.signals import worker_process_init
from django.conf import settings

from workers.active_engine import get_engine, use_torch_threads, warm_tagger_in_background

logger = logging.getLogger(__name__)


@worker_process_init.connect
def load_model_in_pool_process(**_):
    # First, before torch or a decode pool starts a thread: threads inherit their niceness.
    lower_priority_to(settings.MEDIASEARCH_WORKER_NICENESS)
    use_torch_threads(settings.MEDIASEARCH_WORKER_TORCH_THREADS)
    if not settings.MEDIASEARCH_WARM_UP:
        return
    engine = get_engine()
    if engine.fallback_reason:
        logger.warning("worker runs the demo model: %s", engine.fallback_reason)
    else:
        logger.info("worker runs %s", engine.model_id)
    logger.info("worker's CLIP backend: %s", engine.backend.summary if engine.backend else "torch")
    warm_tagger_in_background(engine)


def lower_priority_to(niceness: int) -> None:
    """Run this process at ``niceness`` unless it already runs at a lower priority."""
    current = os.getpriority(os.PRIO_PROCESS, 0)
    if niceness > current:
        os.setpriority(os.PRIO_PROCESS, 0, min(niceness, 19))
