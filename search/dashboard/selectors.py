"""Reads for the staff dashboard: the pipeline, the queue and workers, storage, versions and
search analytics. Each figure is one aggregate query (or one call to Redis or Celery)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import redis
from django.conf import settings
from django.core.cache import cache
from django.db import connection
from django.db.models import Count, F, Func, IntegerField, Min, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from mediasearch.celery import app
from search.models import (
    ClipModel,
    Embedding,
    Photo,
    SearchLog,
)
from search.retrieval.tiles import clock
from search.retrieval.vector_index import index_name

if TYPE_CHECKING:
    pass


logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Bucket:
    start: datetime
    value: float


@dataclass(frozen=True)
class WorkerInfo:
    name: str
    active_tasks: list[str]  # "task name (arguments)"
    queues: list[str]  # the queues it takes work from


@dataclass(frozen=True)
class QueueInfo:
    name: str
    label: str
    depth: int | None  # messages waiting in Redis; None when Redis cannot be asked
    workers: list[str] | None  # the workers that take from it; None when none answered


# How long the dashboard reuses the workers' answer (they are asked with a broadcast that waits
# WORKERS_ASK_TIMEOUT for replies): a page reload, or two staff looking, costs no second wait.
WORKERS_CACHE_SECONDS = 5
WORKERS_ASK_TIMEOUT = 1.0
_WORKERS_CACHE_KEY = "dashboard:workers"


@dataclass(frozen=True)
class VideoInProgress:
    pk: int
    name: str
    length: str  # "1:02:03"
    started_at: datetime | None
    attempt: int
    decoded: str = ""  # how far the worker has decoded it, "0:42", "" until it says
    percent: int | None = None  # of its length decoded (keyframe sampling is most of the work)


@dataclass(frozen=True)
class PipelineFigures:
    queue_depth: int | None  # messages waiting in Redis; None when Redis cannot be asked
    video_queue_depth: int | None  # the same, on the video queue
    queues: list[QueueInfo]  # every queue of the settings' table, in its order
    ocr_queue_depth: int | None  # the same, on the OCR queue
    videos_processing: list[VideoInProgress]  # held by a worker now, longest-running first
    workers: list[WorkerInfo] | None  # None when no worker answered in time
    oldest_pending_since: datetime | None
    throughput: list[Bucket]  # photos made ready per minute, averaged over each bucket
    embedded_last_hour: int


class _Bucket(Func):
    """Which ``width``-second bucket after ``origin`` (both numbers we control) a time is in."""

    template = "floor((extract(epoch FROM %(expressions)s) - %(origin)s) / %(width)s)::int"
    output_field = IntegerField()


def _buckets(queryset, field: str, *, since: datetime, minutes: int, count: int) -> list[int]:
    """How many rows of ``queryset`` have ``field`` in each of ``count`` buckets from ``since``."""
    rows = (
        queryset.filter(**{f"{field}__gte": since})
        .annotate(
            bucket=_Bucket(F(field), origin=float(since.timestamp()), width=int(minutes * 60))
        )
        .order_by()
        .values("bucket")
        .annotate(n=Count("pk"))
        .values_list("bucket", "n")
    )
    found = dict(rows)
    return [found.get(i, 0) for i in range(count)]


def pipeline_figures(*, hours: int = 24, bucket_minutes: int = 30) -> PipelineFigures:
    now = timezone.now()
    count = hours * 60 // bucket_minutes
    since = now - timedelta(minutes=bucket_minutes * count)
    done = Photo.objects.filter(status=Photo.Status.READY, processed_at__gte=since)
    per_bucket = _buckets(done, "processed_at", since=since, minutes=bucket_minutes, count=count)
    oldest = Photo.objects.filter(status=Photo.Status.PENDING).aggregate(at=Min("created_at"))["at"]
    workers = _workers()
    depths = _queue_depths(list(settings.MEDIASEARCH_QUEUES))
    return PipelineFigures(
        queue_depth=depths[settings.EMBEDDING_QUEUE],
        video_queue_depth=depths[settings.VIDEO_QUEUE],
        ocr_queue_depth=depths[settings.OCR_QUEUE],
        queues=[
            QueueInfo(
                name=queue,
                label=spec["label"],
                depth=depths[queue],
                workers=None
                if workers is None
                else [worker.name for worker in workers if queue in worker.queues],
            )
            for queue, spec in settings.MEDIASEARCH_QUEUES.items()
        ],
        videos_processing=[
            VideoInProgress(
                pk,
                name,
                clock(duration or 0) if duration else "",
                started,
                attempt,
                decoded=clock(progress) if progress is not None else "",
                percent=min(100, round(100 * progress / duration))
                if progress is not None and duration
                else None,
            )
            for pk, name, duration, started, attempt, progress in Photo.objects.filter(
                kind=Photo.Kind.VIDEO, status=Photo.Status.PROCESSING
            )
            .order_by("processing_started_at")
            .values_list(
                "pk",
                "original_filename",
                "duration_ms",
                "processing_started_at",
                "attempts",
                "progress_ms",
            )[:20]
        ],
        workers=workers,
        oldest_pending_since=oldest,
        throughput=[
            Bucket(start=since + timedelta(minutes=bucket_minutes * i), value=n / bucket_minutes)
            for i, n in enumerate(per_bucket)
        ],
        embedded_last_hour=done.filter(processed_at__gte=now - timedelta(hours=1)).count(),
    )


def _queue_depths(queues: list[str]) -> dict[str, int | None]:
    """LLEN of each queue's list in Redis, in one round trip."""
    try:
        client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1)
        pipe = client.pipeline(transaction=False)
        for queue in queues:
            pipe.llen(queue)
        return {queue: int(n) for queue, n in zip(queues, pipe.execute(), strict=True)}
    except redis.RedisError:
        logger.warning("could not ask Redis for the queue depths", exc_info=True)
        return dict.fromkeys(queues)


def _workers() -> list[WorkerInfo] | None:
    """The workers that answered, with their queues and tasks; None when none did. Their
    answer is kept in the cache (Redis) for ``WORKERS_CACHE_SECONDS``."""
    try:
        cached = cache.get(_WORKERS_CACHE_KEY)
    except Exception:  # Redis is down: asking the workers through it fails the same way
        cached = None
    if cached is None:
        cached = {"workers": _ask_workers()}
        try:
            cache.set(_WORKERS_CACHE_KEY, cached, timeout=WORKERS_CACHE_SECONDS)
        except Exception:
            logger.warning("could not cache the workers' answer", exc_info=True)
    answered = cached["workers"]
    if answered is None:
        return None
    return [WorkerInfo(name, tasks, queues) for name, tasks, queues in answered]


def forget_workers_answer() -> None:
    """Ask the workers afresh next time (tests)."""
    cache.delete(_WORKERS_CACHE_KEY)


def _ask_workers() -> list[tuple[str, list[str], list[str]]] | None:
    try:
        inspect = app.control.inspect(timeout=WORKERS_ASK_TIMEOUT)
        active = inspect.active()
        queues = inspect.active_queues() if active else None
    except Exception:  # the broker is down: the dashboard says "unknown" instead of failing
        logger.warning("could not ask the workers what they are doing", exc_info=True)
        return None
    if not active:
        return None
    queues = queues or {}
    return [
        (
            name,
            [
                f"{task.get('name', '?').rsplit('.', 1)[-1]} {task.get('args', '')}"
                for task in tasks
            ],
            sorted(queue.get("name", "?") for queue in queues.get(name, [])),
        )
        for name, tasks in sorted(active.items())
    ]


@dataclass(frozen=True)
class StorageFigures:
    originals_bytes: int
    derived_bytes: int
    database_bytes: int
    index_bytes: dict[str, int]  # per model id: its HNSW index


def storage_figures() -> StorageFigures:
    sizes = Photo.objects.aggregate(originals=Sum("size_bytes"), derived=Sum("derived_bytes"))
    model_ids = list(Embedding.objects.order_by().values_list("model_id", flat=True).distinct())
    index_bytes = {}
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_database_size(current_database())")
        database = cursor.fetchone()[0]
        for model_id in model_ids:
            cursor.execute(
                "SELECT coalesce(pg_relation_size(to_regclass(%s)), 0)", [index_name(model_id)]
            )
            index_bytes[model_id] = cursor.fetchone()[0]
    return StorageFigures(
        originals_bytes=sizes["originals"] or 0,
        derived_bytes=sizes["derived"] or 0,
        database_bytes=database,
        index_bytes=index_bytes,
    )


def service_versions() -> dict[str, str]:
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        postgres = cursor.fetchone()[0]
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        row = cursor.fetchone()
    versions = {"PostgreSQL": postgres, "pgvector": row[0] if row else "not installed"}
    try:
        info = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=1).info("server")
        versions["Redis"] = info.get("redis_version", "?")
    except redis.RedisError:
        versions["Redis"] = "unreachable"
    return versions


@dataclass(frozen=True)
class SearchAnalytics:
    per_hour: list[Bucket]
    top_queries: list[tuple[str, int]]
    no_match_queries: list[tuple[str, int]]


def search_analytics(*, hours: int = 24, top: int = 10) -> SearchAnalytics:
    now = timezone.now()
    since = now - timedelta(hours=hours)
    window = SearchLog.objects.filter(created_at__gte=since)
    per_hour = _buckets(window, "created_at", since=since, minutes=60, count=hours)

    def most_common(queryset) -> list[tuple[str, int]]:
        return list(
            queryset.exclude(query="")
            .annotate(text=Lower("query"))
            .values("text")
            .annotate(n=Count("id"))
            .order_by("-n", "text")
            .values_list("text", "n")[:top]
        )

    return SearchAnalytics(
        per_hour=[
            Bucket(start=since + timedelta(hours=i), value=n) for i, n in enumerate(per_hour)
        ],
        top_queries=most_common(window),
        no_match_queries=most_common(window.filter(result_count=0)),
    )


def model_history() -> list[ClipModel]:
    return list(ClipModel.objects.all()[:10])


@dataclass(frozen=True)
class FailureRow:
    photo_id: int
    filename: str
    owner: str
    reason: str
    attempts: int
    at: datetime


@dataclass(frozen=True)
class DashboardStats:
    total: int
    by_status: dict[str, int]
    latest_failures: list[FailureRow]
    embeddings_by_model: dict[str, int]


def dashboard_stats(*, failures: int = 20) -> DashboardStats:
    """Pipeline figures for staff: one aggregate query per table, not one per row."""
    counts = dict(
        Photo.objects.order_by()
        .values_list("status")
        .annotate(n=Count("id"))
        .values_list("status", "n")
    )
    by_status = {status.value: counts.get(status.value, 0) for status in Photo.Status}
    failed = (
        Photo.objects.filter(status=Photo.Status.FAILED)
        .select_related("owner")
        .order_by("-processed_at", "-id")[:failures]
    )
    rows = [
        FailureRow(
            photo_id=photo.pk,
            filename=photo.original_filename,
            owner=photo.owner.get_username(),
            reason=photo.failure_reason,
            attempts=photo.attempts,
            at=photo.processed_at or photo.updated_at,
        )
        for photo in failed
    ]
    per_model = dict(
        Embedding.objects.order_by()
        .values_list("model_id")
        .annotate(n=Count("id"))
        .values_list("model_id", "n")
    )
    return DashboardStats(
        total=sum(by_status.values()),
        by_status=by_status,
        latest_failures=rows,
        embeddings_by_model=per_model,
    )


@dataclass(frozen=True)
class SearchActivity:
    """The last day of searches, from the search log."""

    count: int
    no_match: int  # searches that showed no result
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    recent: list[SearchLog]


def search_activity(*, hours: int = 24, recent: int = 20) -> SearchActivity:
    since = timezone.now() - timedelta(hours=hours)
    window = SearchLog.objects.filter(created_at__gte=since)
    with connection.cursor() as cursor:
        # Percentiles in the database: one query however many searches there were.
        cursor.execute(
            "SELECT count(*), count(*) FILTER (WHERE result_count = 0), "
            "percentile_cont(0.5) WITHIN GROUP (ORDER BY latency_ms), "
            "percentile_cont(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            "FROM search_searchlog WHERE created_at >= %s",
            [since],
        )
        count, no_match, p50, p95 = cursor.fetchone()
    return SearchActivity(
        count=count,
        no_match=no_match,
        latency_p50_ms=p50,
        latency_p95_ms=p95,
        recent=list(window.select_related("user")[:recent]),
    )
