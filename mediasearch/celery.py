"""The Celery app: the standard Django recipe. Tasks live in ``workers/tasks.py``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mediasearch.settings.base")

app = Celery("mediasearch")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["workers"])
