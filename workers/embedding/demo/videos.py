"""Generated test and demo videos: demo scenes one after another, with known boundaries.

Third-party media is never committed; every video the tests, the benchmark and the demo gallery
use is made here with PyAV's bundled encoders (libx264, libx265, libvpx-vp9, libsvtav1, mpeg4,
aac). Each frame is the scene's still picture shifted by a pixel or two, so that no two frames are
identical (as in a real, slightly shaky shot) while the scene stays recognisable.
Plain Python + PyAV + Pillow; no Django.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import BinaryIO, Literal, cast

import av
import numpy as np
from av.video.stream import VideoStream
from PIL import Image

from workers.embedding.demo.scenes import Scene, render

Codec = Literal["h264", "hevc", "vp9", "av1", "mpeg4"]
Container = Literal["mp4", "mov", "mkv", "webm", "avi"]

_ENCODERS: dict[str, str] = {
    "h264": "libx264",
    "hevc": "libx265",
    "vp9": "libvpx-vp9",
    "av1": "libsvtav1",
    "mpeg4": "mpeg4",
}
# SVT-AV1 prints a banner per encoder unless told otherwise (read when the encoder starts).
os.environ.setdefault("SVT_LOG", "1")
_MUXERS: dict[str, str] = {
    "mp4": "mp4",
    "mov": "mov",
    "mkv": "matroska",
    "webm": "webm",
    "avi": "avi",
}
# Fast, small and quiet: tests make many short videos.
_ENCODER_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "ultrafast", "crf": "23"},
    "libx265": {"preset": "ultrafast", "crf": "28", "x265-params": "log-level=error"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "32", "b": "0"},
    "libsvtav1": {"preset": "12", "crf": "40"},
    "mpeg4": {"qscale": "4"},
}


def render_video(
    path_or_file: str | Path | BinaryIO,
    scenes: Sequence[tuple[float, Scene]],
    *,
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
    codec: Codec = "h264",
    container: Container = "mp4",
    metadata: dict[str, str] | None = None,
    audio: bool = False,
    rotation: int = 0,
    blank_start_s: float = 0.0,
) -> list[float]:
    """Write ``scenes`` (each ``(seconds, scene)``, shown in order) as one video.

    ``metadata`` goes into the container; for ``mov`` it is written with
    ``movflags=use_metadata_tags``, so Apple's ``com.apple.quicktime.*`` keys survive. ``rotation``
    sets the display matrix (counter-clockwise degrees, as phones record portrait video). A
    ``blank_start_s`` of black frames comes first, as when a lens cap or a fade opens a clip.
    Returns the scene boundaries: when the first frame of each scene after the first shows (s).
    """
    # use_metadata_tags: arbitrary keys (Apple's com.apple.quicktime.*) as an mdta box.
    options = {"movflags": "use_metadata_tags"} if metadata and container in ("mp4", "mov") else {}
    target = str(path_or_file) if isinstance(path_or_file, (str, Path)) else path_or_file
    output = av.open(target, mode="w", format=_MUXERS[container], options=options)
    try:
        if metadata:
            output.metadata.update(metadata)
        encoder = _ENCODERS[codec]
        video = cast(
            VideoStream, output.add_stream(encoder, rate=fps, options=_ENCODER_OPTIONS[encoder])
        )
        video.width, video.height = size
        video.pix_fmt = "yuv420p"
        if rotation:
            video.set_display_rotation(rotation)
        sound = _add_audio(output) if audio else None
        boundaries: list[float] = []
        frame_index = 0
        start = blank_start_s
        blank = Image.new("RGB", size, (0, 0, 0))
        for index in range(round(blank_start_s * fps)):
            _encode(output, video, blank, index)
        frame_index = round(blank_start_s * fps)
        for position, (seconds, scene) in enumerate(scenes):
            if position:
                boundaries.append(frame_index / fps)  # when its first frame shows
            picture = np.asarray(render(scene, size))
            end_frame = round((start + seconds) * fps)
            while frame_index < end_frame:
                # A small circular drift: every frame differs a little, like a hand-held shot.
                phase = frame_index * 0.7
                dx, dy = round(2 * math.cos(phase)), round(2 * math.sin(phase))
                moved = np.roll(picture, (dy, dx), axis=(0, 1))
                _encode(output, video, Image.fromarray(moved), frame_index)
                frame_index += 1
            start += seconds
        for packet in video.encode():
            output.mux(packet)
        if sound is not None:
            _write_audio(output, sound, start)
    finally:
        output.close()
    return boundaries


def render_audio_only(path_or_file: str | Path | BinaryIO, *, seconds: float = 2.0) -> None:
    """Write an M4A-style MP4 with an AAC tone and no video stream (a bad input for videos)."""
    target = str(path_or_file) if isinstance(path_or_file, (str, Path)) else path_or_file
    output = av.open(target, mode="w", format="mp4")
    try:
        _write_audio(output, _add_audio(output), seconds)
    finally:
        output.close()


def _encode(output, video, image: Image.Image, index: int) -> None:
    frame = av.VideoFrame.from_image(image).reformat(format="yuv420p")
    frame.pts = index
    frame.time_base = Fraction(1, int(video.codec_context.rate or video.rate))
    for packet in video.encode(frame):
        output.mux(packet)


def _add_audio(output):
    codec = "libopus" if output.format.name == "webm" else "aac"
    rate = 48000
    stream = output.add_stream(codec, rate=rate)
    stream.layout = "mono"
    return stream


def _write_audio(output, stream, seconds: float) -> None:
    rate = stream.codec_context.sample_rate
    chunk = stream.codec_context.frame_size or 1024
    total = int(seconds * rate)
    fmt = stream.codec_context.format.name
    for begin in range(0, total, chunk):
        t = (np.arange(begin, begin + chunk) / rate).astype(np.float32)
        tone = 0.2 * np.sin(2 * np.pi * 440 * t)
        if fmt.startswith("s16"):
            samples = (tone * 32767).astype(np.int16).reshape(1, -1)
        else:
            samples = tone.astype(np.float32).reshape(1, -1)
        frame = av.AudioFrame.from_ndarray(samples, format=fmt, layout="mono")
        frame.sample_rate = rate
        frame.pts = begin
        for packet in stream.encode(frame):
            output.mux(packet)
    for packet in stream.encode():
        output.mux(packet)
