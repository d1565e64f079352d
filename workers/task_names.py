"""The names of the Celery tasks, the only part of ``workers`` that ``search`` sends to.

``search.dispatch`` sends messages by these names and ``workers.tasks`` registers its tasks
under them, so the web side never imports the task modules (nor they it, in a circle).
"""

EMBED_PHOTO = "workers.tasks.embed_photo"
EMBED_VIDEO = "workers.tasks.embed_video"
PREPARE_MOTION = "workers.tasks.prepare_motion"
FIND_NEAR_DUPLICATES = "workers.tasks.find_near_duplicates"
SWEEP_PHOTOS = "workers.tasks.sweep_photos"
MODEL_PREPARE = "workers.tasks.model_prepare"
MODEL_BACKFILL = "workers.tasks.model_backfill"
MODEL_RETIRE = "workers.tasks.model_retire"
MODEL_AFTER_SWITCH = "workers.tasks.model_after_switch"
REEMBED_PHOTOS = "workers.tasks.reembed_photos"
RETAG_PHOTOS = "workers.tasks.retag_photos"
READ_PHOTO_TEXT = "workers.tasks.read_photo_text"
