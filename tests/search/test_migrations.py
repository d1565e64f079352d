"""The video migration on a populated database: forward keeps every photo and vector as it
was (nothing to re-embed), backward keeps one vector per item and model."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("search", "0006_photo_claim_lease")
AFTER = ("search", "0007_videos")


def migrate(target):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate([target])
    return executor.loader.project_state([target]).apps


def test_forward_and_back_on_a_populated_library(django_user_model):
    latest = MigrationExecutor(connection).loader.graph.leaf_nodes("search")
    try:
        apps = migrate(BEFORE)
        Photo, Embedding = apps.get_model("search", "Photo"), apps.get_model("search", "Embedding")
        User = apps.get_model("auth", "User")
        owner = User.objects.create(username="keeper")
        photos = [
            Photo.objects.create(
                owner_id=owner.pk,
                original_filename=f"{i}.jpg",
                size_bytes=1,
                sha256=f"{i:064}",
                image_format="JPEG",
                status="ready",
                file=f"originals/{i}.jpg",
            )
            for i in range(3)
        ]
        for i, photo in enumerate(photos):
            Embedding.objects.create(photo_id=photo.pk, model_id="m", vector=[1.0, float(i)])

        apps = migrate(AFTER)
        Photo, Embedding = apps.get_model("search", "Photo"), apps.get_model("search", "Embedding")
        assert set(Photo.objects.values_list("kind", flat=True)) == {"photo"}
        assert sorted(Embedding.objects.values_list("photo_id", "frame_ms")) == [
            (photo.pk, 0) for photo in photos
        ]
        # A video with three moments, under the new schema.
        video = Photo.objects.create(
            owner_id=owner.pk, original_filename="v.mp4", size_bytes=1, sha256="v" * 64,
            image_format="MP4", kind="video", status="ready", file="originals/v.mp4",
        )  # fmt: skip
        for at in (0, 3000, 6000):
            Embedding.objects.create(photo_id=video.pk, model_id="m", frame_ms=at, vector=[0, 1])
        Embedding.objects.create(photo_id=video.pk, model_id="other", frame_ms=3000, vector=[1, 0])

        apps = migrate(BEFORE)
        Embedding = apps.get_model("search", "Embedding")
        assert Embedding.objects.filter(photo_id=video.pk).count() == 2  # one per model
        assert Embedding.objects.count() == len(photos) + 2

        apps = migrate(AFTER)
        assert apps.get_model("search", "Embedding").objects.count() == len(photos) + 2
    finally:
        migrate(latest[0])
