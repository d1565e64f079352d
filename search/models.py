import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.db import models
from pgvector.django import VectorField


def photo_upload_to(photo: "Photo", filename: str) -> str:
    # Generated names only: the user's file name is data, never a path.
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"originals/{photo.owner_id}/{uuid.uuid4().hex}{suffix}"


def thumbnail_upload_to(photo: "Photo", filename: str) -> str:
    return f"thumbnails/{photo.owner_id}/{uuid.uuid4().hex}.jpg"


def preview_upload_to(photo: "Photo", filename: str) -> str:
    return f"previews/{photo.owner_id}/{uuid.uuid4().hex}.jpg"


class Photo(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos"
    )
    file = models.FileField(upload_to=photo_upload_to, max_length=255)
    original_filename = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    image_format = models.CharField(max_length=16, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Grid size and a large preview, both made by the worker from the same decode.
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    preview = models.FileField(upload_to=preview_upload_to, max_length=255, blank=True)

    # From the file's own metadata; unknown stays empty.
    taken_at = models.DateTimeField(null=True, blank=True)
    taken_at_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    camera_make = models.CharField(max_length=100, blank=True)
    camera_model = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the queue was last rung for this photo; the sweeper rings again if nothing happened.
    queued_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    processed_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sha256"], name="photo_unique_bytes_per_owner"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "queued_at"], name="photo_status_queued"),
            models.Index(fields=["owner", "-created_at"], name="photo_owner_recent"),
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.get_status_display()})"


class Embedding(models.Model):
    """One photo's vector under one model.

    Keyed by (photo, model id) so that vectors of a second model, of any dimension, can be
    computed beside the first while search keeps using the first. The column has no fixed
    dimension; each model gets its own partial HNSW index over ``vector::vector(dim)``
    (see ``search.vector_index``).
    """

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="embeddings")
    model_id = models.CharField(max_length=200)
    vector = VectorField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["photo", "model_id"], name="embedding_one_per_model"),
        ]
        indexes = [models.Index(fields=["model_id"], name="embedding_model")]

    def __str__(self) -> str:
        return f"{self.model_id} vector of photo {self.photo_id}"
