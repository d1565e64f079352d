"""The queues, one per kind of work: the one table that Celery's routes (``celery.py``), ./dev up
(``mediasearch.devstack``), the dashboard and the test that holds docker-compose.yml to it
(``tests/test_queues.py``) read. Reads no environment, so ./dev up can read it before any is set.
"""

from typing import Any

# A queue per kind of work, so that one kind never waits behind another (a long video behind
# a batch of photos, a sweep behind both) and each can get workers of its own, on hosts of its
# own. For each queue: what it carries (the dashboard's label), the tasks routed to it (by
# name, as in workers/task_names.py; a task named nowhere goes to the embedding queue, Celery's
# default "celery"), and which ./dev up worker process takes it: on a 2-core home server the
# light queues share one process with the photos.
EMBEDDING_QUEUE = "celery"
VIDEO_QUEUE = "video"
MAINTENANCE_QUEUE = "maintenance"
OCR_QUEUE = "ocr"
MEDIASEARCH_QUEUES: dict[str, dict[str, Any]] = {
    EMBEDDING_QUEUE: {
        "label": "Photos to embed",
        # The model runs here: photos, re-embedding, a model switch's backfill.
        "tasks": [
            "workers.tasks.embed_photo",
            "workers.tasks.reembed_photos",
            "workers.tasks.model_prepare",
            "workers.tasks.model_backfill",
        ],
        "dev_worker": "worker",
    },
    VIDEO_QUEUE: {
        "label": "Videos to embed",
        # A Live Photo's or motion photo's clip is made playable here too (a transcode).
        "tasks": ["workers.tasks.embed_video", "workers.tasks.prepare_motion"],
        "dev_worker": "video-worker",
    },
    MAINTENANCE_QUEUE: {
        "label": "Maintenance",
        # Short database work (and thumbnails for the pixel check): near-duplicates, re-tagging
        # from stored vectors, the sweeper, the end of a model switch.
        "tasks": [
            "workers.tasks.find_near_duplicates",
            "workers.tasks.retag_photos",
            "workers.tasks.sweep_photos",
            "workers.tasks.model_retire",
            "workers.tasks.model_after_switch",
        ],
        "dev_worker": "worker",
    },
    OCR_QUEUE: {
        "label": "Photos to read (OCR)",
        # After a photo's vector is stored: embedding never waits for it, and an OCR crash
        # never touches the vector.
        "tasks": ["workers.tasks.read_photo_text"],
        "dev_worker": "ocr-worker",
    },
}
