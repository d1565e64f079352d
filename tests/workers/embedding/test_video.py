"""The video engine on generated videos (workers/embedding/demo/videos.py): tiny, a few seconds."""

from __future__ import annotations

import io
import itertools
import random
from datetime import UTC, datetime

import pytest
from PIL import Image

from workers.embedding.demo.scenes import Scene
from workers.embedding.demo.videos import render_audio_only, render_video
from workers.embedding.video import (
    VIDEO_FORMATS,
    VideoDecodeError,
    identify_video,
    make_playable_copy,
    needs_playable_copy,
    probe_video,
    sample_keyframes,
    scrub_strip,
    video_renditions,
)

SIZE = (160, 120)
RED_STAR = Scene("star", "red", 1, "large", "middle", "white", "plain", 1)
BLUE_CIRCLE = Scene("circle", "blue", 1, "large", "left", "yellow", "striped", 2)
GREEN_SQUARE = Scene("square", "green", 2, "small", None, "black", "dotted", 3)


def _video(scenes=((2.0, RED_STAR), (2.0, BLUE_CIRCLE)), **options) -> io.BytesIO:
    buffer = io.BytesIO()
    render_video(buffer, list(scenes), size=options.pop("size", SIZE), **options)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("codec", "container", "expected"),
    [
        ("h264", "mp4", "mp4"),
        ("hevc", "mov", "mp4"),
        ("h264", "mkv", "matroska"),
        ("vp9", "webm", "webm"),
        ("mpeg4", "avi", "avi"),
    ],
)
def test_identify_video_names_each_container(codec, container, expected):
    video = _video(codec=codec, container=container)
    video.seek(7)

    assert identify_video(video) == expected
    assert video.tell() == 7
    assert expected in VIDEO_FORMATS


def test_identify_video_refuses_what_is_not_a_video():
    jpeg = io.BytesIO()
    Image.new("RGB", (8, 8)).save(jpeg, format="JPEG")
    heic_like = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(40)
    for data in (
        b"<!DOCTYPE html><html><body>hi</body></html>",
        jpeg.getvalue(),
        random.Random(3).randbytes(4096),
        heic_like,
        b"",
    ):
        assert identify_video(io.BytesIO(data)) is None


APPLE_METADATA = {
    "creation_time": "2024-05-01T16:03:22.000000Z",
    "com.apple.quicktime.creationdate": "2024-05-01T18:03:22+0200",
    "com.apple.quicktime.location.ISO6709": "+48.8584+002.2945+035.000/",
    "com.apple.quicktime.make": "Apple",
    "com.apple.quicktime.model": "iPhone 15 Pro",
    "com.apple.quicktime.content.identifier": "9A1B2C3D-0000-4E5F-8899-AABBCCDDEEFF",
}


def test_probe_reads_apple_metadata_and_rotation():
    video = _video(codec="hevc", container="mov", metadata=APPLE_METADATA, audio=True, rotation=-90)

    info = probe_video(video, max_duration_s=60)

    assert info.format == "mp4"
    assert info.codec == "hevc"
    assert (info.width, info.height) == (120, 160)  # portrait after the display matrix
    assert info.rotation == -90
    assert info.duration_s == pytest.approx(4.0, abs=0.1)
    assert info.fps == pytest.approx(10.0)
    assert info.has_audio and info.audio_codec == "aac"
    assert info.taken_at == datetime(2024, 5, 1, 16, 3, 22, tzinfo=UTC)
    assert info.taken_at_offset_minutes == 120
    assert (info.latitude, info.longitude) == (48.8584, 2.2945)
    assert (info.camera_make, info.camera_model) == ("Apple", "iPhone 15 Pro")
    assert info.content_identifier == "9A1B2C3D-0000-4E5F-8899-AABBCCDDEEFF"


def test_probe_reads_plain_mp4_creation_time_and_location():
    metadata = {"creation_time": "2023-12-24T08:30:00.000000Z", "location": "-33.8568+151.2153/"}
    video = _video(metadata=metadata)

    info = probe_video(video, max_duration_s=60)

    assert info.taken_at == datetime(2023, 12, 24, 8, 30, tzinfo=UTC)
    assert info.taken_at_offset_minutes is None
    assert (info.latitude, info.longitude) == (-33.8568, 151.2153)
    assert (info.camera_make, info.camera_model, info.content_identifier) == ("", "", "")
    assert not info.has_audio


def test_probe_reads_matroska_tags():
    video = _video(container="mkv", codec="av1", metadata={"creation_time": "2022-01-02T03:04:05Z"})

    info = probe_video(video, max_duration_s=60)

    assert (info.format, info.codec) == ("matroska", "av1")
    assert info.taken_at == datetime(2022, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert (info.width, info.height) == SIZE


def _truncated() -> io.BytesIO:
    data = _video().getvalue()
    return io.BytesIO(data[: len(data) // 2])


def _truncated_faststart() -> io.BytesIO:
    # Index first (as phones and make_playable_copy write), so only the samples are missing.
    copy = io.BytesIO()
    make_playable_copy(_video(), copy, time_limit_s=30)
    data = copy.getvalue()
    return io.BytesIO(data[: len(data) // 2])


def _audio_only() -> io.BytesIO:
    buffer = io.BytesIO()
    render_audio_only(buffer)
    buffer.seek(0)
    return buffer


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: io.BytesIO(b""), "the file is empty"),
        (_truncated, "the video is truncated or damaged"),
        (_truncated_faststart, "the video is truncated or damaged"),
        (_audio_only, "the file has no video stream (audio only)"),
        (lambda: io.BytesIO(b"<!DOCTYPE html><html>" + b"x" * 500), "not a supported video"),
        (lambda: io.BytesIO(b"\x00\x00\x00\x18ftypisom" + bytes(300)), "truncated or damaged"),
    ],
)
def test_bad_input_fails_with_a_reason(make, reason):
    with pytest.raises(VideoDecodeError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        probe_video(make(), max_duration_s=60)


def test_a_video_over_the_duration_limit_is_refused():
    with pytest.raises(VideoDecodeError) as refused:
        probe_video(_video(), max_duration_s=3)

    assert str(refused.value) == "the video is 0:00:04 long; the limit is 0:00:03"


def test_keyframes_sampling_fails_on_what_is_not_a_video():
    with pytest.raises(VideoDecodeError):
        sample_keyframes(
            io.BytesIO(b"<html>" * 100), side=64, min_gap_s=1, max_gap_s=5, max_frames=10
        )


SCENES = [
    (3.0, RED_STAR),
    (1.5, BLUE_CIRCLE),
    (4.0, GREEN_SQUARE),
    (12.0, RED_STAR.__class__(**{**RED_STAR.__dict__, "colour": "purple", "layout_seed": 9})),
    (2.0, BLUE_CIRCLE),
]


def _boundaries() -> list[float]:
    times, start = [], 0.0
    for seconds, _scene in SCENES[:-1]:
        start += seconds
        times.append(start)
    return times


def test_keyframes_find_every_scene_within_one_min_gap_and_keep_the_gaps():
    video = _video(SCENES)

    keyframes = sample_keyframes(video, side=96, min_gap_s=1.0, max_gap_s=5.0, max_frames=50)

    times = [k.time_ms / 1000 for k in keyframes]
    assert times[0] == 0.0
    for boundary in _boundaries():
        assert any(boundary <= t <= boundary + 1.0 for t in times), (boundary, times)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= 1.0 - 1e-6
    assert max(gaps) <= 5.0 + 0.1 + 1e-6  # one frame of slack
    # 22.5 s: five scenes, plus the 12 s scene split by the maximum gap.
    assert len(keyframes) <= 8
    for keyframe in keyframes:
        assert keyframe.image.mode == "RGB" and max(keyframe.image.size) <= 96


def test_keyframes_are_capped_keeping_the_biggest_changes():
    keyframes = sample_keyframes(
        _video(SCENES), side=64, min_gap_s=0.5, max_gap_s=1.0, max_frames=5
    )

    times = [k.time_ms / 1000 for k in keyframes]
    assert len(times) == 5
    assert times == sorted(times)
    # The first frame and the four cuts are the most significant changes.
    assert times[0] == 0.0
    for boundary in _boundaries():
        assert any(boundary <= t <= boundary + 0.5 for t in times), (boundary, times)


def test_keyframes_skip_a_black_start_and_are_upright():
    video = _video([(3.0, RED_STAR)], blank_start_s=1.5, rotation=-90)

    keyframes = sample_keyframes(video, side=80, min_gap_s=1.0, max_gap_s=10.0, max_frames=10)

    assert keyframes[0].time_ms == 1500
    assert keyframes[0].image.size == (60, 80)


def test_renditions_are_jpegs_of_each_size_from_the_first_non_blank_keyframe():
    video = _video([(2.0, RED_STAR), (2.0, BLUE_CIRCLE)], size=(320, 240), blank_start_s=0.5)
    keyframes = sample_keyframes(video, side=64, min_gap_s=1.0, max_gap_s=10.0, max_frames=10)

    renditions = video_renditions(video, keyframes, sides=[256, 128])

    sizes = [Image.open(io.BytesIO(data)) for data in renditions]
    assert [(image.format, image.size) for image in sizes] == [
        ("JPEG", (256, 192)),
        ("JPEG", (128, 96)),
    ]
    # The poster is the red star on white, not the black opening.
    assert sum(sizes[1].convert("L").resize((1, 1)).getpixel((0, 0)) for _ in [0]) > 128

    strip = Image.open(io.BytesIO(scrub_strip(keyframes, height=40)))
    assert strip.format == "JPEG"
    assert strip.size == (round(64 * 40 / 48) * len(keyframes), 40)


def test_which_videos_need_a_playable_copy():
    assert needs_playable_copy(probe_video(_video(codec="hevc", container="mov"), max_duration_s=9))
    assert needs_playable_copy(probe_video(_video(container="mkv"), max_duration_s=9))
    assert needs_playable_copy(
        probe_video(_video(codec="mpeg4", container="avi"), max_duration_s=9)
    )
    assert not needs_playable_copy(probe_video(_video(audio=True), max_duration_s=9))
    assert not needs_playable_copy(
        probe_video(_video(codec="vp9", container="webm", audio=True), max_duration_s=9)
    )


def test_playable_copy_of_hevc_is_h264_aac_mp4_of_the_same_length():
    original = _video(codec="hevc", container="mov", audio=True, size=(320, 240), rotation=-90)
    copy = io.BytesIO()

    make_playable_copy(original, copy, max_side=160, time_limit_s=60)

    copy.seek(0)
    data = copy.getvalue()
    assert data.index(b"moov") < data.index(b"mdat")  # +faststart: playable while downloading
    info = probe_video(copy, max_duration_s=60)
    assert (info.format, info.codec, info.audio_codec, info.pixel_format) == (
        "mp4",
        "h264",
        "aac",
        "yuv420p",
    )
    assert info.duration_s == pytest.approx(4.0, abs=0.2)
    assert (info.width, info.height) == (120, 160)
    assert not needs_playable_copy(info)


def test_playable_copy_stops_at_the_time_limit():
    with pytest.raises(VideoDecodeError, match="longer than"):
        make_playable_copy(_video(), io.BytesIO(), time_limit_s=0.0001)
