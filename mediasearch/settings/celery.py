from .environment import env_int, env_str

REDIS_URL = env_str("REDIS_URL")

CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Results are never read: the database is the source of truth for every photo's state.
CELERY_TASK_IGNORE_RESULT = True
# At-least-once: a message is acknowledged only after its task finished, and a worker that dies
# mid-task gives its message back. Every task is safe to run twice.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Redis re-delivers an unacknowledged message after this long (must exceed the longest task).
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env_int("MEDIASEARCH_VISIBILITY_TIMEOUT", 3600)
}
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_TIME_LIMIT = env_int("MEDIASEARCH_TASK_TIME_LIMIT", 600)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 30
# Videos have a queue of their own, so that a long one never sits in front of a batch of
# photos; run a worker for it (``-Q video``; ./dev up and docker-compose do), with its own
# time limit.
VIDEO_QUEUE = "video"
# OCR too (``-Q ocr``): it runs after a photo's vector is stored, so embedding never waits
# for it and an OCR crash never touches the vector.
CELERY_TASK_ROUTES = {
    "workers.tasks.embed_video": {"queue": VIDEO_QUEUE},
    "workers.tasks.read_photo_text": {"queue": "ocr"},
}
MEDIASEARCH_VIDEO_TASK_TIME_LIMIT = env_int("MEDIASEARCH_VIDEO_TASK_TIME_LIMIT", 3600)
CELERY_WORKER_SEND_TASK_EVENTS = True

# The queue is a doorbell: the sweeper re-rings it for photos left pending or stuck.
MEDIASEARCH_SWEEP_INTERVAL = env_int("MEDIASEARCH_SWEEP_INTERVAL", 60)
MEDIASEARCH_PENDING_REQUEUE_AFTER = env_int("MEDIASEARCH_PENDING_REQUEUE_AFTER", 300)
# A worker holds the photos it claimed for this long and renews the lease every third of it
# while the batch runs; a dead worker's photos are claimable again once it runs out, and the
# sweeper re-sends them: within lease + sweep interval (45 s + 60 s) of the crash.
MEDIASEARCH_CLAIM_LEASE = env_int("MEDIASEARCH_CLAIM_LEASE", 45)
# A photo claimed this many times without finishing (it crashes its worker, or outages keep
# interrupting it) is marked failed instead of being tried forever.
MEDIASEARCH_MAX_ATTEMPTS = env_int("MEDIASEARCH_MAX_ATTEMPTS", 5)
CELERY_BEAT_SCHEDULE = {
    "sweep-photos": {"task": "workers.tasks.sweep_photos", "schedule": MEDIASEARCH_SWEEP_INTERVAL},
}
# Sending happens inside web requests: fail fast when Redis is down (the sweeper re-sends).
CELERY_TASK_PUBLISH_RETRY_POLICY = {
    "max_retries": 2,
    "interval_start": 0,
    "interval_step": 0.5,
    "interval_max": 1,
}
# Each pool process loads the model at start (workers/signals.py); a large one takes a while.
CELERY_WORKER_PROC_ALIVE_TIMEOUT = env_int("MEDIASEARCH_WORKER_START_TIMEOUT", 180)
