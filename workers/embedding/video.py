"""Video decoding for the pipeline: sniffing, metadata, keyframe sampling, posters, playable copies.

Plain Python on PyAV (FFmpeg inside the wheel; no system ffmpeg), numpy and Pillow; no Django.
Every failure a user's file can cause surfaces as ``VideoDecodeError`` whose message is fit to
show that user. Keyframes are sampled in one decode pass by scene change (frame differences on
tiny thumbnails), with a minimum and a maximum gap and a cap per video (docs/VIDEO.md).
"""

from __future__ import annotations

import io
import math
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from typing import BinaryIO

import av
import av.error
import numpy as np
from av.video.reformatter import VideoReformatter
from PIL import Image

from workers.embedding.images import make_thumbnail


@dataclass(frozen=True)
class VideoFormat:
    """A container uploads are accepted in, and how a file in it is served and named."""

    name: str  # the key in VIDEO_FORMATS: what identify_video returns and a video stores
    label: str  # what people call it, in messages
    mime_type: str
    extension: str  # with its dot


VIDEO_FORMATS: dict[str, VideoFormat] = {
    # One family: ISO base media (MP4, M4V, 3GP) and Apple QuickTime (MOV) share the box layout
    # and FFmpeg's demuxer; browsers play H.264 MOV files through their MP4 demuxer.
    "mp4": VideoFormat("mp4", "MP4/MOV", "video/mp4", ".mp4"),
    "matroska": VideoFormat("matroska", "MKV", "video/x-matroska", ".mkv"),
    "webm": VideoFormat("webm", "WebM", "video/webm", ".webm"),
    "avi": VideoFormat("avi", "AVI", "video/x-msvideo", ".avi"),
}
ACCEPTED_VIDEO_FORMATS_TEXT = ", ".join(entry.label for entry in VIDEO_FORMATS.values())
# Decoders we run (FFmpeg decoder names); anything else is refused before a frame is decoded.
SUPPORTED_CODECS = frozenset(
    {"h264", "hevc", "vp8", "vp9", "av1", "libdav1d", "mpeg4", "mjpeg", "mpeg2video", "prores"}
)

# ISO-BMFF brands of still images (HEIC, AVIF) and RAW files (Canon CR3) are not videos.
_IMAGE_BRANDS = frozenset(
    {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif", b"avis"}
    | {b"crx "}
)
# QuickTime files from old cameras may start with a top-level atom instead of ftyp.
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})


class VideoDecodeError(ValueError):
    """The file is not a video we accept, it is damaged or over a limit. ``str(error)`` is why."""


def identify_video(source: BinaryIO) -> str | None:
    """The ``VIDEO_FORMATS`` key that the first bytes of ``source`` announce, or ``None``.

    A cheap sniff (no decoder runs); the stream position is restored. Never trusts a file name.
    """
    position = source.tell()
    try:
        source.seek(0)
        head = source.read(4096)
    finally:
        source.seek(position)
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brands = {head[8:12]} | {head[i : i + 4] for i in range(16, min(len(head), 64), 4)}
        return None if head[8:12] in _IMAGE_BRANDS or not brands - _IMAGE_BRANDS else "mp4"
    if len(head) >= 8 and head[4:8] in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return "mp4"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return _ebml_doctype(head)
    if head[:4] == b"RIFF" and head[8:12] in (b"AVI ", b"AVIX"):
        return "avi"
    return None


def _ebml_doctype(head: bytes) -> str | None:
    # The DocType element (ID 0x4282) sits in the first few dozen bytes of the EBML header.
    at = head.find(b"\x42\x82", 4, 64)
    if at < 0 or at + 3 > len(head):
        return None
    size_byte = head[at + 2]
    if not size_byte & 0x80:  # only the one-byte size form occurs in practice
        return None
    doctype = head[at + 3 : at + 3 + (size_byte & 0x7F)]
    return {b"matroska": "matroska", b"webm": "webm"}.get(doctype)


@dataclass(frozen=True)
class VideoInfo:
    format: str  # a VIDEO_FORMATS key
    duration_s: float
    width: int  # display size, after the rotation metadata
    height: int
    fps: float
    codec: str  # FFmpeg's codec name: h264, hevc, vp9, av1, ...
    has_audio: bool
    taken_at: datetime | None  # aware, UTC
    taken_at_offset_minutes: int | None
    latitude: float | None
    longitude: float | None
    camera_make: str
    camera_model: str
    content_identifier: str  # Apple's Live Photo pairing id, "" if none
    audio_codec: str = ""  # "" without audio
    rotation: int = 0  # degrees counter-clockwise that the display matrix turns the frames
    pixel_format: str = ""


def probe_video(source: BinaryIO, *, max_duration_s: float) -> VideoInfo:
    """Container and stream metadata of ``source``, after decoding its first frame.

    Raises ``VideoDecodeError`` for an empty file, something that is not a container we accept,
    no video stream (audio only), a codec we do not decode, a truncated or damaged file, and a
    duration over ``max_duration_s``.
    """
    size = source.seek(0, io.SEEK_END)
    source.seek(0)
    if size == 0:
        raise VideoDecodeError("the file is empty")
    video_format = identify_video(source)
    if video_format is None:
        raise VideoDecodeError(f"not a supported video (accepted: {ACCEPTED_VIDEO_FORMATS_TEXT})")
    with _open(source) as container:
        stream = _video_stream(container)
        audio = container.streams.audio[0] if container.streams.audio else None
        duration = _duration(container, stream)
        if duration <= 0:
            raise VideoDecodeError("the video has no frames (zero length)")
        if duration > max_duration_s:
            raise VideoDecodeError(
                f"the video is {_clock(duration)} long; the limit is {_clock(max_duration_s)}"
            )
        if video_format == "mp4":
            _check_complete(stream, size)
        first = _first_frame(container, stream)
        rotation = first.rotation
        width, height = stream.codec_context.width, stream.codec_context.height
        if rotation % 180:
            width, height = height, width
        tags = _tags(container, stream)
        taken_at, offset = _taken_at(tags)
        latitude, longitude = _position(tags)
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        return VideoInfo(
            format=video_format,
            duration_s=round(duration, 3),
            width=width,
            height=height,
            fps=round(float(rate), 3) if rate else 0.0,
            codec=_codec_name(stream),
            has_audio=audio is not None,
            taken_at=taken_at,
            taken_at_offset_minutes=offset,
            latitude=latitude,
            longitude=longitude,
            camera_make=_first_tag(tags, _MAKE_KEYS),
            camera_model=_first_tag(tags, _MODEL_KEYS),
            content_identifier=_first_tag(tags, (CONTENT_IDENTIFIER_KEY,)),
            audio_codec=audio.codec_context.name if audio is not None else "",
            rotation=rotation,
            pixel_format=stream.codec_context.pix_fmt or "",
        )


CONTENT_IDENTIFIER_KEY = "com.apple.quicktime.content.identifier"


def read_content_identifier(source: BinaryIO) -> str:
    """The Live Photo content identifier of a QuickTime/MP4 file, from its metadata alone
    (no frame is decoded: cheap enough for the upload request). "" when it has none, or when
    the container cannot be opened (the probe then gives the reason)."""
    position = source.tell()
    try:
        with av.open(source, mode="r", metadata_errors="replace") as container:
            streams = container.streams.video
            tags = _tags(container, streams[0]) if streams else _tags(container, container)
    except (av.error.FFmpegError, OSError, ValueError):
        return ""
    finally:
        source.seek(position)
    return _first_tag(tags, (CONTENT_IDENTIFIER_KEY,))


def _open(source: BinaryIO) -> av.container.InputContainer:
    source.seek(0)
    try:
        return av.open(source, mode="r", metadata_errors="replace")
    except av.error.FFmpegError as error:
        raise VideoDecodeError(f"the video is truncated or damaged ({_reason(error)})") from error


def _reason(error: Exception) -> str:
    return getattr(error, "strerror", None) or str(error) or type(error).__name__


def _video_stream(container: av.container.InputContainer) -> av.video.stream.VideoStream:
    if not container.streams.video:
        if container.streams.audio:
            raise VideoDecodeError("the file has no video stream (audio only)")
        raise VideoDecodeError("the file has no video stream")
    stream = container.streams.video[0]
    name = _codec_name(stream)
    if name not in SUPPORTED_CODECS:
        raise VideoDecodeError(f"the video codec '{name}' is not supported")
    return stream


def _codec_name(stream: av.video.stream.VideoStream) -> str:
    try:
        name = stream.codec_context.name
    except (AttributeError, av.error.FFmpegError):
        return "unknown"
    # The bundled AV1 decoder is dav1d; people and browsers call the codec AV1.
    return {"libdav1d": "av1", "libvpx-vp9": "vp9", "libvpx": "vp8"}.get(name, name or "unknown")


def _duration(container: av.container.InputContainer, stream) -> float:
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    if container.duration:
        return container.duration / av.time_base
    return 0.0


def _check_complete(stream, size: int) -> None:
    # An MP4's index says where every sample is; one past the end of the file means the upload
    # was cut short (a damaged file that would otherwise decode its first half silently).
    try:
        entries = stream.index_entries
        last = entries[len(entries) - 1] if len(entries) else None
    except (AttributeError, IndexError, av.error.FFmpegError):
        return
    if last is not None and last.pos + last.size > size:
        share = round(100 * size / (last.pos + last.size))
        raise VideoDecodeError(f"the video is truncated or damaged (only {share}% of it is there)")


def _first_frame(container, stream) -> av.VideoFrame:
    try:
        for frame in container.decode(stream):
            return frame
    except av.error.FFmpegError as error:
        raise VideoDecodeError(f"the video is truncated or damaged ({_reason(error)})") from error
    raise VideoDecodeError("the video is truncated or damaged (no frame could be decoded)")


def _clock(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"


# --- metadata -------------------------------------------------------------------------------

_MAKE_KEYS = ("com.apple.quicktime.make", "make", "com.android.manufacturer", "manufacturer")
_MODEL_KEYS = ("com.apple.quicktime.model", "model", "com.android.model")
_LOCATION_KEYS = ("com.apple.quicktime.location.iso6709", "location", "location-eng")
# ISO 6709: latitude then longitude, each signed degrees (±DD.D, ±DDMM.M or ±DDMMSS.S).
_ISO6709 = re.compile(r"^\s*([+-]\d+(?:\.\d+)?)([+-]\d+(?:\.\d+)?)")


def _tags(container, stream) -> dict[str, str]:
    tags: dict[str, str] = {}
    # Matroska upper-cases its tag names; stream tags fill in what the container lacks.
    for source in (stream.metadata, container.metadata):
        for key, value in source.items():
            tags[key.lower()] = _text(value)
    return tags


def _text(value: object) -> str:
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable()).strip()[:100]


def _first_tag(tags: dict[str, str], keys: Sequence[str]) -> str:
    return next((tags[key] for key in keys if tags.get(key)), "")


def _taken_at(tags: dict[str, str]) -> tuple[datetime | None, int | None]:
    # Apple's creation date keeps the zone it was shot in; creation_time is UTC (and is often the
    # time of the export or of the encode, so it comes second).
    apple = _parse_date(tags.get("com.apple.quicktime.creationdate", ""))
    if apple is not None and apple.tzinfo is not None:
        offset = apple.utcoffset()
        minutes = round(offset.total_seconds() / 60) if offset is not None else None
        return apple.astimezone(UTC), minutes
    parsed = _parse_date(tags.get("creation_time", "")) or apple
    if parsed is None:
        return None, None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC), None


def _parse_date(text: str) -> datetime | None:
    if not text:
        return None
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    # Muxers write 1904-01-01 or 1970-01-01 when no date was set.
    if parsed.year < 1971:
        return None
    return parsed


def _position(tags: dict[str, str]) -> tuple[float | None, float | None]:
    for key in _LOCATION_KEYS:
        match = _ISO6709.match(tags.get(key, ""))
        if match is None:
            continue
        latitude = _iso6709_degrees(match.group(1), 2)
        longitude = _iso6709_degrees(match.group(2), 3)
        if -90 <= latitude <= 90 and -180 <= longitude <= 180 and (latitude or longitude):
            return round(latitude, 7), round(longitude, 7)
    return None, None


def _iso6709_degrees(text: str, degree_digits: int) -> float:
    sign = -1.0 if text[0] == "-" else 1.0
    whole, _, fraction = text[1:].partition(".")
    extra = len(whole) - degree_digits  # 0: degrees, 2: and minutes, 4: and seconds
    value = float(text[1:])
    if extra >= 2:
        degrees = int(whole[:degree_digits])
        minutes = int(whole[degree_digits : degree_digits + 2])
        seconds = float(whole[degree_digits + 2 :] + "." + (fraction or "0")) if extra >= 4 else 0
        if extra == 2:
            minutes_value = float(whole[degree_digits:] + "." + (fraction or "0"))
            value = degrees + minutes_value / 60
        else:
            value = degrees + minutes / 60 + seconds / 3600
    return sign * value


# --- keyframes ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Keyframe:
    time_ms: int
    image: Image.Image  # RGB, upright, longer side <= the side asked for


# Scene scoring works on thumbnails this wide (longer side): enough to see a cut, cheap to make.
_SCORE_SIDE = 64
# A cut: the difference to the previous frame is this many times its recent running average...
_ADAPTIVE_RATIO = 3.0
_RUNNING_WINDOW = 8
# ...and above an absolute floor (mean absolute difference, 0..1): see sample_keyframes.
DEFAULT_SCENE_THRESHOLD = 0.02
# A frame this flat (standard deviation of its thumbnail, 0..1) is blank: black, white, a fade.
_BLANK_STD = 0.02


@dataclass
class _Candidate:
    time_ms: int
    image: Image.Image
    score: float  # how big the change was; inf for the first frame
    by_gap: bool  # taken because max_gap passed, not for a change


def sample_keyframes(
    source: BinaryIO,
    *,
    side: int,
    min_gap_s: float,
    max_gap_s: float,
    max_frames: int,
    scene_threshold: float = DEFAULT_SCENE_THRESHOLD,
    time_limit_s: float | None = None,
    on_progress: Callable[[int], None] | None = None,
    progress_every_s: float = 2.0,
) -> list[Keyframe]:
    """Keyframes of ``source`` in time order, from one decode pass.

    A frame is taken when the scene changes (its difference to the previous frame is well
    above the running average of recent differences and above ``scene_threshold``), never
    closer than ``min_gap_s`` to the previous keyframe (a change inside the gap is taken as soon
    as the gap ends), and at the latest ``max_gap_s`` after it. The first frame that is not blank
    always is. Over ``max_frames``, the biggest changes are kept, with gap frames spread evenly
    among the rest. Raises ``VideoDecodeError`` for damage (unless some frames were found before
    it) and when the decode takes longer than ``time_limit_s``. ``on_progress`` is called with
    the time decoded so far (ms), at most once every ``progress_every_s`` seconds of wall time.
    """
    if max_frames < 1:
        raise ValueError("max_frames must be at least 1")
    min_gap_ms, max_gap_ms = round(min_gap_s * 1000), round(max_gap_s * 1000)
    deadline = time.monotonic() + time_limit_s if time_limit_s else None
    candidates: list[_Candidate] = []
    recent: list[float] = []
    previous: np.ndarray | None = None
    pending: float | None = None  # the score of a change seen inside the minimum gap
    blank_start: _Candidate | None = None
    # One reformatter for the whole pass keeps its scaler: 4x cheaper than frame.reformat.
    reformatter = VideoReformatter()
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        # Non-reference frames (B-frames) are never decoded: half the work on typical phone
        # video, and their neighbours, a frame or two away, show the same scene.
        stream.codec_context.skip_frame = "NONREF"
        try:
            reported = time.monotonic()
            for frame in _frames(container, stream, deadline):
                time_ms = round(frame.time * 1000) if frame.time is not None else 0
                if on_progress is not None and time.monotonic() - reported >= progress_every_s:
                    reported = time.monotonic()
                    on_progress(time_ms)
                thumb = _score_thumbnail(frame, reformatter)
                score = 0.0 if previous is None else float(np.abs(thumb - previous).mean())
                previous = thumb
                average = sum(recent) / len(recent) if recent else 0.0
                is_cut = score > scene_threshold and score > _ADAPTIVE_RATIO * average
                recent = [*recent[-(_RUNNING_WINDOW - 1) :], score]
                if not candidates:
                    if float(thumb.std()) < _BLANK_STD:
                        if blank_start is None:
                            blank_start = _Candidate(time_ms, _upright(frame, side), 0.0, False)
                        continue
                    candidates.append(_Candidate(time_ms, _upright(frame, side), math.inf, False))
                    continue
                since = time_ms - candidates[-1].time_ms
                if is_cut and since < min_gap_ms:
                    pending = max(pending or 0.0, score)
                    continue
                if is_cut or (pending is not None and since >= min_gap_ms):
                    candidates.append(
                        _Candidate(time_ms, _upright(frame, side), max(score, pending or 0), False)
                    )
                    pending = None
                elif since >= max_gap_ms:
                    candidates.append(_Candidate(time_ms, _upright(frame, side), score, True))
                if len(candidates) > 4 * max_frames:
                    # Memory stays bounded on a long video: thin out as we go.
                    candidates = _cap(candidates, 2 * max_frames)
        except VideoDecodeError:
            if not candidates:
                raise
    if not candidates and blank_start is not None:
        candidates.append(blank_start)  # a video that is blank throughout still gets its frame
    if not candidates:
        raise VideoDecodeError("the video is truncated or damaged (no frame could be decoded)")
    return [Keyframe(c.time_ms, c.image) for c in _cap(candidates, max_frames)]


def _frames(container, stream, deadline: float | None) -> Iterator[av.VideoFrame]:
    try:
        for frame in container.decode(stream):
            if deadline is not None and time.monotonic() > deadline:
                raise VideoDecodeError("decoding the video took longer than the time limit")
            yield frame
    except av.error.FFmpegError as error:
        raise VideoDecodeError(f"the video is truncated or damaged ({_reason(error)})") from error


def _score_thumbnail(frame: av.VideoFrame, reformatter: VideoReformatter) -> np.ndarray:
    scale = _SCORE_SIDE / max(frame.width, frame.height)
    width = max(2, round(frame.width * scale))
    height = max(2, round(frame.height * scale))
    small = reformatter.reformat(
        frame, width=width, height=height, format="rgb24", interpolation="AREA"
    )
    return small.to_ndarray().astype(np.float32) / 255.0


def _upright(frame: av.VideoFrame, side: int) -> Image.Image:
    scale = min(1.0, side / max(frame.width, frame.height))
    width = max(2, round(frame.width * scale))
    height = max(2, round(frame.height * scale))
    image = frame.reformat(width=width, height=height, format="rgb24", interpolation="AREA")
    picture = image.to_image()
    rotation = frame.rotation
    # The display matrix turns the frame counter-clockwise by ``rotation`` degrees; PIL's rotate
    # does the same for a positive angle.
    return picture.rotate(rotation, expand=True) if rotation else picture


def _cap(candidates: list[_Candidate], max_frames: int) -> list[_Candidate]:
    if len(candidates) <= max_frames:
        return candidates
    changes = [c for c in candidates if not c.by_gap]
    gaps = [c for c in candidates if c.by_gap]
    changes.sort(key=lambda c: c.score, reverse=True)
    kept = changes[:max_frames]
    room = max_frames - len(kept)
    if room > 0 and gaps:
        step = len(gaps) / room
        kept += [gaps[int(i * step)] for i in range(room)]
    return sorted(kept, key=lambda c: c.time_ms)


# --- renditions -----------------------------------------------------------------------------


def video_renditions(
    source: BinaryIO, keyframes: Sequence[Keyframe], *, sides: Sequence[int]
) -> tuple[bytes, ...]:
    """JPEG posters, one per side in ``sides`` (each no larger than it), from the first keyframe
    that is not blank, decoded again from ``source`` at full size (keyframe images are small).

    Raises ``VideoDecodeError`` when there is no keyframe; a failed re-decode falls back to the
    keyframe's own image.
    """
    if not keyframes:
        raise VideoDecodeError("the video has no frame to make a poster from")
    poster = next((k for k in keyframes if not _is_blank(k.image)), keyframes[0])
    image = _frame_at(source, poster.time_ms, max(sides)) or poster.image
    renditions: dict[int, bytes] = {}
    for side in sorted(set(sides), reverse=True):
        renditions[side] = make_thumbnail(image, max_side=side)
    return tuple(renditions[side] for side in sides)


def scrub_strip(keyframes: Sequence[Keyframe], *, height: int, max_count: int = 10) -> bytes:
    """A horizontal JPEG strip of up to ``max_count`` keyframes (evenly chosen), each ``height``
    tall and of equal width, for scrubbing a video in the grid by hovering."""
    if not keyframes:
        raise VideoDecodeError("the video has no frame to make a strip from")
    step = max(1.0, len(keyframes) / max_count)
    chosen = [keyframes[int(i * step)] for i in range(min(max_count, len(keyframes)))]
    first = chosen[0].image
    width = max(1, round(first.width * height / first.height))
    strip = Image.new("RGB", (width * len(chosen), height))
    for index, keyframe in enumerate(chosen):
        strip.paste(
            keyframe.image.resize((width, height), Image.Resampling.BILINEAR), (index * width, 0)
        )
    buffer = io.BytesIO()
    strip.save(buffer, format="JPEG", quality=80, optimize=True)
    return buffer.getvalue()


def _is_blank(image: Image.Image) -> bool:
    small = np.asarray(image.convert("L").resize((32, 32)), dtype=np.float32) / 255.0
    return float(small.std()) < _BLANK_STD


def _frame_at(source: BinaryIO, time_ms: int, side: int) -> Image.Image | None:
    try:
        with _open(source) as container:
            stream = _video_stream(container)
            stream.thread_type = "AUTO"
            if stream.time_base:
                target = int(time_ms / 1000 / stream.time_base)
                container.seek(target, stream=stream, backward=True, any_frame=False)
            for frame in container.decode(stream):
                if frame.time is None or frame.time * 1000 >= time_ms - 1:
                    return _upright(frame, side)
    except (VideoDecodeError, av.error.FFmpegError):
        return None
    return None


# --- a playable copy ------------------------------------------------------------------------

# What Chromium plays without help: (container, video codec) -> audio codecs.
_PLAYABLE: dict[tuple[str, str], frozenset[str]] = {
    ("mp4", "h264"): frozenset({"", "aac", "mp3"}),
    ("webm", "vp8"): frozenset({"", "opus", "vorbis", "libopus", "libvorbis"}),
    ("webm", "vp9"): frozenset({"", "opus", "vorbis", "libopus", "libvorbis"}),
    ("webm", "av1"): frozenset({"", "opus", "vorbis", "libopus", "libvorbis"}),
}
# Chromium decodes 8-bit 4:2:0 everywhere; 10-bit or 4:2:2 H.264 fails in many builds.
_PLAYABLE_PIXELS = frozenset({"", "yuv420p", "yuvj420p"})


def needs_playable_copy(info: VideoInfo) -> bool:
    """Whether Chromium cannot play the original as it is (HEVC, MKV, AVI, 10-bit H.264...)."""
    audio = _PLAYABLE.get((info.format, info.codec))
    if audio is None:
        return True
    return info.audio_codec not in audio or info.pixel_format not in _PLAYABLE_PIXELS


def make_playable_copy(
    source: BinaryIO,
    destination: BinaryIO,
    *,
    max_side: int = 1280,
    time_limit_s: float,
) -> None:
    """Write an H.264 (yuv420p) + AAC MP4 of ``source`` to ``destination``, index first
    (``+faststart``: it plays while it downloads), no larger than ``max_side``.

    The display rotation is kept as metadata. Raises ``VideoDecodeError`` for damage and when
    the transcode takes longer than ``time_limit_s``.
    """
    # +faststart rewrites the file by name once it is written, so the MP4 is made in a
    # temporary file and copied over.
    with tempfile.TemporaryDirectory(prefix="mediasearch-video-") as folder:
        path = os.path.join(folder, "playable.mp4")
        _transcode(source, path, max_side=max_side, time_limit_s=time_limit_s)
        with open(path, "rb") as made:
            shutil.copyfileobj(made, destination)


def _transcode(source: BinaryIO, path: str, *, max_side: int, time_limit_s: float) -> None:
    deadline = time.monotonic() + time_limit_s
    with _open(source) as container:
        # The display matrix is known from a decoded frame and must be set before any is encoded.
        rotation = _first_frame(container, _video_stream(container)).rotation
    with _open(source) as container:
        stream = _video_stream(container)
        stream.thread_type = "AUTO"
        audio_in = container.streams.audio[0] if container.streams.audio else None
        width, height = _even_size(
            stream.codec_context.width, stream.codec_context.height, max_side
        )
        output = av.open(path, mode="w", format="mp4", options={"movflags": "+faststart"})
        try:
            video_out = output.add_stream(
                "libx264", rate=_rate(stream), options={"preset": "veryfast", "crf": "23"}
            )
            video_out.width, video_out.height = width, height
            video_out.pix_fmt = "yuv420p"
            video_out.codec_context.time_base = Fraction(1, 90000)
            video_out.thread_type = "AUTO"
            if rotation:
                video_out.set_display_rotation(rotation)
            audio_out = resampler = None
            if audio_in is not None:
                audio_out = output.add_stream("aac", rate=48000)
                audio_out.layout = "stereo"
                resampler = av.AudioResampler(format="fltp", layout="stereo", rate=48000)
            start: float | None = None
            last_pts = -1
            streams = [stream] + ([audio_in] if audio_in is not None else [])
            for packet in container.demux(*streams):
                if time.monotonic() > deadline:
                    raise VideoDecodeError(
                        f"making a playable copy took longer than {time_limit_s:g} s"
                    )
                for frame in packet.decode():
                    if isinstance(frame, av.VideoFrame):
                        if start is None:
                            start = frame.time or 0.0
                        pts = round(((frame.time or 0.0) - start) * 90000)
                        if pts <= last_pts:
                            continue
                        last_pts = pts
                        scaled = frame.reformat(width=width, height=height, format="yuv420p")
                        scaled.pts, scaled.time_base = pts, Fraction(1, 90000)
                        output.mux(video_out.encode(scaled))
                    elif isinstance(frame, av.AudioFrame) and audio_out and resampler:
                        frame.pts = None
                        for resampled in resampler.resample(frame):
                            output.mux(audio_out.encode(resampled))
            output.mux(video_out.encode(None))
            if audio_out is not None and resampler is not None:
                for resampled in resampler.resample(None):
                    output.mux(audio_out.encode(resampled))
                output.mux(audio_out.encode(None))
        except av.error.FFmpegError as error:
            raise VideoDecodeError(
                f"the video is truncated or damaged ({_reason(error)})"
            ) from error
        finally:
            output.close()


def _even_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    scale = min(1.0, max_side / max(width, height))
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def _rate(stream) -> Fraction:
    rate = stream.average_rate or stream.guessed_rate or Fraction(30)
    return Fraction(rate).limit_denominator(1001)


__all__ = [
    "VIDEO_FORMATS",
    "Keyframe",
    "VideoDecodeError",
    "VideoFormat",
    "VideoInfo",
    "identify_video",
    "make_playable_copy",
    "needs_playable_copy",
    "probe_video",
    "sample_keyframes",
    "scrub_strip",
    "video_renditions",
]
