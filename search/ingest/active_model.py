"""Which model is active: the dashboard's choice (a ClipModel row), else the configured one.

The engine asks this through ``workers.active_engine.set_active_spec_provider`` (see
``search.apps``), so that it needs no ORM."""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DatabaseError

from search.models import ClipModel
from workers.active_engine import configured_spec, preload_in_background
from workers.embedding.model import ModelSpec

# How long a process trusts its idea of which model is active before asking the database.
ACTIVE_SPEC_TTL = 5.0


_cached_spec: tuple[float, ModelSpec] | None = None


def active_spec_from_database() -> ModelSpec:
    """The model search and new photos use: the dashboard's choice, else the configured one.

    Cached for a few seconds per process, so a request costs no query.
    """
    global _cached_spec
    now = time.monotonic()
    if _cached_spec is not None and now - _cached_spec[0] < ACTIVE_SPEC_TTL:
        return _cached_spec[1]
    try:
        rows = dict(
            (state, ModelSpec(name, pretrained, precision))
            for state, name, pretrained, precision in ClipModel.objects.filter(
                state__in=[ClipModel.State.ACTIVE, ClipModel.State.BUILDING]
            ).values_list("state", "name", "pretrained", "precision")
        )
    except DatabaseError:
        # The database is down: keep serving the model last known (the error page needs it).
        return _cached_spec[1] if _cached_spec is not None else configured_spec()
    spec = rows.get(ClipModel.State.ACTIVE) or configured_spec()
    incoming = rows.get(ClipModel.State.BUILDING)
    if incoming is not None and settings.MEDIASEARCH_WARM_UP:
        # Load the model being built before it becomes active: the first search after the
        # switch then costs what any other does.
        preload_in_background(incoming)
    _cached_spec = (now, spec)
    return spec


def forget_active_spec() -> None:
    global _cached_spec
    _cached_spec = None
