"""Decoding a video for the embed write path: its metadata, keyframes (each embedded as its
own vector, at its time), a poster as thumbnail and preview, and a copy the browser can play
when the original is not (``workers.embedding.video`` does the decoding)."""

from __future__ import annotations

import logging
import tempfile
import uuid

import numpy as np
from django.conf import settings
from django.core.files import File
from django.core.files.storage import default_storage
from django.db import DatabaseError

from search.ingest.decoded import Decoded
from search.models import Photo, playable_name
from workers.embedding.model import ClipEngine
from workers.embedding.video import (
    VideoDecodeError,
    make_playable_copy,
    needs_playable_copy,
    probe_video,
    sample_keyframes,
    video_renditions,
)

logger = logging.getLogger(__name__)


def video_decoded(
    video: Photo, *, engine: ClipEngine, renditions: bool, attempt: uuid.UUID
) -> Decoded:
    """Probe, sample and embed ``video``; with ``renditions``, also its poster and (when the
    original is not playable in a browser) a playable copy, stored under ``attempt``'s name.
    Raises ``VideoDecodeError`` with a reason the owner can read."""
    with video.file.open("rb") as handle:
        info = probe_video(handle, max_duration_s=settings.MEDIASEARCH_MAX_VIDEO_SECONDS)
        duration_ms = round(info.duration_s * 1000)
        _progress_write(video, attempt, progress_ms=0, duration_ms=duration_ms)
        handle.seek(0)
        keyframes = sample_keyframes(
            handle,
            side=settings.MEDIASEARCH_PREVIEW_SIZE if renditions else 2 * engine.input_side,
            min_gap_s=settings.MEDIASEARCH_VIDEO_MIN_GAP,
            max_gap_s=settings.MEDIASEARCH_VIDEO_MAX_GAP,
            max_frames=settings.MEDIASEARCH_VIDEO_MAX_FRAMES,
            on_progress=lambda at: _progress_write(video, attempt, progress_ms=at),
            progress_every_s=settings.MEDIASEARCH_VIDEO_PROGRESS_EVERY,
        )
        if not keyframes:
            raise VideoDecodeError("no frame of the video could be decoded")
        batch = settings.MEDIASEARCH_EMBED_BATCH_SIZE
        vectors: list[np.ndarray] = []
        for start in range(0, len(keyframes), batch):
            chunk = keyframes[start : start + batch]
            vectors.extend(engine.encode_images([frame.image for frame in chunk]))
        frames = [(frame.time_ms, vector) for frame, vector in zip(keyframes, vectors, strict=True)]
        if not renditions:
            return Decoded(photo=video, frames=frames, renditions=None, fields={})
        thumbnail, preview = video_renditions(
            handle,
            keyframes,
            sides=(settings.MEDIASEARCH_THUMBNAIL_SIZE, settings.MEDIASEARCH_PREVIEW_SIZE),
        )
        files = {}
        if needs_playable_copy(info):
            handle.seek(0)
            files["playable"] = _playable_store(video, handle, attempt)
    fields: dict[str, object] = {
        "width": info.width,
        "height": info.height,
        "duration_ms": duration_ms,
        "progress_ms": None,
        "frame_rate": info.fps,
        "video_codec": info.codec,
        "taken_at": info.taken_at,
        "taken_at_offset_minutes": info.taken_at_offset_minutes,
        "camera_make": info.camera_make,
        "camera_model": info.camera_model,
        "latitude": info.latitude,
        "longitude": info.longitude,
        "derived_bytes": len(thumbnail) + len(preview),
    }
    return Decoded(
        photo=video, frames=frames, renditions=(thumbnail, preview), fields=fields, files=files
    )


def _progress_write(
    video: Photo, attempt: uuid.UUID, *, progress_ms: int, duration_ms: int | None = None
) -> None:
    """How far this attempt has decoded ``video``, for the dashboard (only while it holds the
    video; a failed write costs the figure, never the video)."""
    fields: dict[str, object] = {"progress_ms": progress_ms}
    if duration_ms is not None:
        fields["duration_ms"] = duration_ms
    try:
        Photo.objects.filter(pk=video.pk, claim_token=attempt).update(**fields)
    except DatabaseError:
        logger.warning("could not record the progress of video %s", video.pk, exc_info=True)


def _playable_store(video: Photo, source, attempt: uuid.UUID) -> str:
    """Transcode to a temporary file (a copy can be large), then store it."""
    name = playable_name(video, attempt)
    with tempfile.TemporaryFile(suffix=".mp4") as copy:
        try:
            make_playable_copy(
                source, copy, time_limit_s=settings.MEDIASEARCH_VIDEO_TRANSCODE_TIME_LIMIT
            )
            copy.seek(0)
            return default_storage.save(name, File(copy))
        except BaseException:
            if default_storage.exists(name):
                default_storage.delete(name)
            raise
