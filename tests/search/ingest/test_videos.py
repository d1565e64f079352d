"""Videos through the real pipeline: sniffed at upload, embedded keyframe by keyframe on their
own queue's path, found by search once, at their best moment."""

from __future__ import annotations

import io

import numpy as np
import pytest

from search.ingest.services import photos_embed
from search.models import Embedding, Photo
from search.photos.services import PhotoRejected, photo_create
from search.retrieval.query import Media, SearchFilters, Strictness
from search.retrieval.selectors import photo_search, query_moments
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.embedding.demo.scenes import Scene
from workers.embedding.demo.videos import render_video
from workers.embedding.video import probe_video

pytestmark = pytest.mark.django_db


def scene(shape: str, colour: str, background: str = "white") -> Scene:
    return Scene(shape=shape, colour=colour, count=1, size="large", position="middle",
                 background=background, pattern="plain", layout_seed=0)  # fmt: skip


STORY = [
    (3.0, scene("circle", "blue")),
    (3.0, scene("star", "red")),
    (3.0, scene("square", "green", "yellow")),
]


def video_bytes(**options) -> bytes:
    out = io.BytesIO()
    render_video(out, STORY, **options)
    return out.getvalue()


def uploaded_video(owner, name="clip.mp4", **options) -> Photo:
    return photo_create(
        owner=owner, file=upload_file(name, video_bytes(**options), "video/mp4")
    ).photo


def embed_video(video: Photo) -> Photo.Status | None:
    """What the video queue's task does."""
    return photos_embed(photo_id=video.pk, batch_size=1, kind=Photo.Kind.VIDEO).get(video.pk)


def test_a_video_is_sniffed_and_embedded_as_one_vector_per_keyframe(alice):
    video = uploaded_video(alice)
    assert (video.kind, video.image_format, video.status) == ("video", "MP4", "pending")

    assert embed_video(video) == Photo.Status.READY

    video.refresh_from_db()
    assert video.duration_ms == pytest.approx(9000, abs=200)
    assert (video.width, video.height, video.video_codec) == (320, 240, "h264")
    assert video.thumbnail and video.preview and not video.playable  # H.264 MP4 plays as is
    frames = list(
        Embedding.objects.filter(photo=video).order_by("frame_ms").values_list("frame_ms", "vector")
    )
    times = [at for at, _ in frames]
    assert times[0] == 0 and len(times) >= 3
    # A keyframe soon after each scene change (at 3 s and 6 s).
    for boundary in (3000, 6000):
        assert any(boundary <= at <= boundary + 1500 for at in times), times
    for _, vector in frames:
        assert abs(np.linalg.norm(np.asarray(vector)) - 1) < 1e-5


def test_embedding_a_video_twice_keeps_one_row_per_moment(alice):
    video = uploaded_video(alice)
    embed_video(video)
    before = sorted(Embedding.objects.filter(photo=video).values_list("frame_ms", flat=True))

    assert embed_video(video) is None  # its message again: left alone
    Photo.objects.filter(pk=video.pk).update(status="pending")  # a sweeper re-send after a crash
    assert embed_video(video) == Photo.Status.READY

    after = sorted(Embedding.objects.filter(photo=video).values_list("frame_ms", flat=True))
    assert after == before


def test_photos_and_videos_never_share_a_batch(alice):
    photos = [
        photo_create(
            owner=alice, file=upload_file(f"{i}.jpg", encode(make_image(size=(64 + i, 64))))
        ).photo
        for i in range(3)
    ]
    video = uploaded_video(alice)

    statuses = embed_waiting()  # the photo queue's batches

    assert statuses == {photo.pk: Photo.Status.READY for photo in photos}
    assert Photo.objects.get(pk=video.pk).status == "pending"
    assert photos_embed(photo_id=photos[0].pk, batch_size=1, kind=Photo.Kind.VIDEO) == {}


def test_a_search_finds_the_video_once_at_the_moment_that_matches(alice):
    video = uploaded_video(alice)
    embed_video(video)

    outcome = photo_search(user=alice, text="a red star", strictness=Strictness.ALL)

    hits = [hit for hit in outcome.hits if hit.photo.pk == video.pk]
    assert len(hits) == 1
    assert 3000 <= hits[0].moment_ms < 6000, hits[0].moment_ms
    best = query_moments(video=video, text="a red star")[0]
    assert (best.time_ms, best.score) == (hits[0].moment_ms, pytest.approx(hits[0].score))


def test_the_media_filter_keeps_photos_or_videos(alice):
    photo = photo_create(owner=alice, file=upload_file("p.jpg", encode(make_image()))).photo
    embed_waiting()
    video = uploaded_video(alice)
    embed_video(video)

    def found(media: Media) -> set[int]:
        outcome = photo_search(
            user=alice,
            text="a shape",
            strictness=Strictness.ALL,
            filters=SearchFilters(media=media),
        )
        return {hit.photo.pk for hit in outcome.hits}

    assert found(Media.BOTH) == {photo.pk, video.pk}
    assert found(Media.VIDEOS) == {video.pk}
    assert found(Media.PHOTOS) == {photo.pk}


def test_the_worker_records_how_far_it_has_decoded_a_video_and_clears_it_when_done(alice, settings):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    settings.MEDIASEARCH_VIDEO_PROGRESS_EVERY = 0  # every frame, so that a short video reports
    video = uploaded_video(alice)

    with CaptureQueriesContext(connection) as queries:
        assert embed_video(video) == Photo.Status.READY

    progress = [q["sql"] for q in queries if 'SET "progress_ms"' in q["sql"]]
    assert len(progress) > 20  # 9 s at 10 fps, non-reference frames skipped
    assert 'SET "progress_ms" = 0, "duration_ms" = 9000' in progress[0]  # as soon as probed
    assert 'SET "progress_ms" = 8900' in progress[-1]  # its last frame
    video.refresh_from_db()
    assert video.progress_ms is None and video.duration_ms == pytest.approx(9000, abs=200)


def test_an_hevc_video_gets_a_browser_playable_copy(alice):
    video = uploaded_video(alice, name="phone.mov", codec="hevc", container="mov")

    assert embed_video(video) == Photo.Status.READY

    video.refresh_from_db()
    assert video.video_codec == "hevc" and video.playable
    with video.playable.open("rb") as handle:
        copy = probe_video(handle, max_duration_s=3600)
    assert copy.codec == "h264"
    assert copy.duration_s == pytest.approx(9.0, abs=0.3)


def test_a_truncated_video_fails_alone_with_a_reason(alice):
    data = video_bytes()
    broken = photo_create(
        owner=alice, file=upload_file("cut.mp4", data[: len(data) // 2], "video/mp4")
    ).photo
    good = uploaded_video(alice, name="good.mp4", size=(160, 120))

    assert embed_video(broken) == Photo.Status.FAILED
    assert embed_video(good) == Photo.Status.READY
    broken.refresh_from_db()
    assert broken.failure_reason
    assert not Embedding.objects.filter(photo=broken).exists()


def test_an_html_file_named_like_a_video_is_refused_at_upload(alice):
    with pytest.raises(PhotoRejected) as refused:
        photo_create(
            owner=alice,
            file=upload_file("clip.mp4", b"<!doctype html><script>alert(1)</script>", "video/mp4"),
        )
    assert refused.value.reason.startswith("not a supported image or video (images: JPEG")
    assert refused.value.reason.endswith("videos: MP4/MOV, MKV, WebM, AVI)")
    assert not Photo.objects.exists()


def test_text_finds_held_out_videos_at_the_right_moment(alice):
    """Recall@5 of text -> video through the full stack, on videos of held-out scenes: the
    right video among the first five, its best moment within one sampling gap of the scene."""
    import random

    from django.conf import settings

    from workers.embedding.demo.scenes import caption, random_scene

    rng = random.Random(15)
    truth = []  # (video, caption, start s, end s)
    for index in range(16):  # five results of sixteen: a guess finds a third
        scenes = [
            (rng.choice([3.0, 4.0, 5.0]), random_scene(rng, split="heldout")) for _ in range(3)
        ]
        out = io.BytesIO()
        render_video(out, scenes, size=(160, 160), fps=5)
        video = photo_create(
            owner=alice, file=upload_file(f"v{index}.mp4", out.getvalue(), "video/mp4")
        ).photo
        assert embed_video(video) == Photo.Status.READY
        start = 0.0
        for seconds, shown in scenes:
            truth.append((video.pk, caption(shown, rng), start, start + seconds))
            start += seconds

    gap = settings.MEDIASEARCH_VIDEO_MIN_GAP
    found = at_moment = first = 0
    for video_id, text, start, end in truth:
        hits = photo_search(
            user=alice,
            text=text,
            strictness=Strictness.ALL,
            filters=SearchFilters(media=Media.VIDEOS),
        ).hits[:5]
        hit = next((hit for hit in hits if hit.photo.pk == video_id), None)
        if hit is not None:
            found += 1
            first += hits[0].photo.pk == video_id
            at_moment += start - gap <= hit.moment_ms / 1000 <= end + gap
    recall = found / len(truth)
    print(f"text->video recall@5 {recall:.2f}, @1 {first / len(truth):.2f}, "
          f"at the moment {at_moment}/{found}")  # fmt: skip
    assert recall >= 0.9
    assert at_moment >= 0.9 * found
