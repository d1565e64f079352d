"""Which failures of pipeline work are worth trying again.

An outage (the database, the broker or the object store did not answer) passes, so the work is
retried with backoff and the sweeper re-sends whatever still slips through. A time limit cut
the work short: it is given back, not failed. Anything else (an ``IntegrityError``,
``DataError`` or ``ProgrammingError`` included) is a bug that a retry would only repeat.
"""

from __future__ import annotations

from celery.exceptions import SoftTimeLimitExceeded
from django.db import InterfaceError, OperationalError

from search.photos.storage import OBJECT_STORE_OUTAGES

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    OSError,
    ConnectionError,
    *OBJECT_STORE_OUTAGES,  # the object store (MEDIASEARCH_STORAGE=s3) did not answer
)
INTERRUPTIONS: tuple[type[BaseException], ...] = (SoftTimeLimitExceeded,)
# Outages of a service that say nothing about the photos being worked on: an attempt they cut
# short is given back uncounted, so that an object store down for minutes (every retry claims
# the batch again, and fails to read it) does not use up the photos' attempts and fail them.
# A bare OSError is not among them: it may come from one photo's file, again and again.
OUTAGES_NOT_COUNTED: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    *OBJECT_STORE_OUTAGES,
)
