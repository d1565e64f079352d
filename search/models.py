import uuid
from pathlib import PurePosixPath

from django.conf import settings
from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models
from pgvector.django import VectorField


def photo_upload_to(photo: "Photo", filename: str) -> str:
    # Generated names only: the user's file name is data, never a path.
    suffix = PurePosixPath(filename).suffix.lower()[:10]
    return f"originals/{photo.owner_id}/{uuid.uuid4().hex}{suffix}"


def rendition_names(photo: "Photo", attempt: uuid.UUID) -> tuple[str, str]:
    """Where one attempt at processing ``photo`` writes its thumbnail and preview (and, for a
    video, its playable copy: ``playable_name``).

    Named by the attempt's token, so that the attempt after one that died between writing its
    files and committing the row that points at them knows exactly which files to remove.
    """
    return (
        f"thumbnails/{photo.owner_id}/{photo.pk}/{attempt.hex}.jpg",
        f"previews/{photo.owner_id}/{photo.pk}/{attempt.hex}.jpg",
    )


def playable_name(photo: "Photo", attempt: uuid.UUID) -> str:
    return f"playable/{photo.owner_id}/{photo.pk}/{attempt.hex}.mp4"


def attempt_files(photo: "Photo", attempt: uuid.UUID) -> tuple[str, ...]:
    """Every file one attempt at processing ``photo`` may have written."""
    return (*rendition_names(photo, attempt), playable_name(photo, attempt))


def motion_name(photo: "Photo", suffix: str = ".mp4") -> str:
    """A fresh name for a Live Photo's or motion photo's clip, or its playable copy."""
    return f"motion/{photo.owner_id}/{photo.pk}/{uuid.uuid4().hex}{suffix[:10]}"


def motion_upload_to(photo: "Photo", filename: str) -> str:
    return motion_name(photo, PurePosixPath(filename).suffix.lower() or ".mp4")


def thumbnail_upload_to(photo: "Photo", filename: str) -> str:
    return rendition_names(photo, uuid.uuid4())[0]


def preview_upload_to(photo: "Photo", filename: str) -> str:
    return rendition_names(photo, uuid.uuid4())[1]


def playable_upload_to(photo: "Photo", filename: str) -> str:
    return f"playable/{photo.owner_id}/{photo.pk}/{uuid.uuid4().hex}.mp4"


class Photo(models.Model):
    """One item of a library: a still photo (RAW files included) or a video.

    Videos share the row, and with it everything built on photos (visibility, albums,
    sharing, tags, filters, the pipeline's claims): ``kind`` tells them apart, and the
    video-only columns stay empty for stills.
    """

    class Kind(models.TextChoices):
        PHOTO = "photo", "Photo"
        VIDEO = "video", "Video"

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        PROCESSING = "processing", "Processing"
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    class MotionStatus(models.TextChoices):
        NONE = "", "None"  # a plain still (or a video)
        PENDING = "pending", "Pending"  # the clip is to be extracted, probed, made playable
        READY = "ready", "Ready"
        FAILED = "failed", "Failed"

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="photos"
    )
    file = models.FileField(upload_to=photo_upload_to, max_length=255)
    original_filename = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField()
    sha256 = models.CharField(max_length=64)
    # The format sniffed from the bytes: a Pillow name for stills ("JPEG"), a container for
    # videos ("MP4", "MATROSKA", "WEBM", "AVI"); see search.photos.files.media_format.
    image_format = models.CharField(max_length=16, blank=True)
    kind = models.CharField(max_length=8, choices=Kind.choices, default=Kind.PHOTO)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    frame_rate = models.FloatField(null=True, blank=True)
    video_codec = models.CharField(max_length=32, blank=True)
    # A copy the browser can play (H.264/AAC MP4), made when the original is not.
    playable = models.FileField(upload_to=playable_upload_to, max_length=255, blank=True)
    # Seconds of a video decoded so far by the attempt processing it (the dashboard's
    # progress); written at a bounded rate, cleared when it is done.
    progress_ms = models.PositiveIntegerField(null=True, blank=True)
    # A Live Photo (an Apple still + MOV sharing ``content_identifier``) or an Android motion
    # photo (a JPEG with an MP4 appended) is ONE row, the still's: the clip is its ``motion``
    # (docs/VIDEO.md, Live Photos). A MOV that arrives before its still is a video row, with
    # its identifier, until the still comes and takes it over.
    content_identifier = models.CharField(max_length=64, blank=True)
    motion = models.FileField(upload_to=motion_upload_to, max_length=255, blank=True)
    motion_playable = models.FileField(upload_to=motion_upload_to, max_length=255, blank=True)
    motion_filename = models.CharField(max_length=255, blank=True)  # as the MOV was uploaded
    motion_sha256 = models.CharField(max_length=64, blank=True)  # the MOV's, for duplicates
    motion_size_bytes = models.PositiveBigIntegerField(default=0)
    motion_duration_ms = models.PositiveIntegerField(null=True, blank=True)
    motion_status = models.CharField(
        max_length=16, choices=MotionStatus.choices, blank=True, default=MotionStatus.NONE
    )
    motion_failure_reason = models.TextField(blank=True)
    motion_queued_at = models.DateTimeField(null=True, blank=True)
    width = models.PositiveIntegerField(null=True, blank=True)
    height = models.PositiveIntegerField(null=True, blank=True)
    # Grid size and a large preview, both made by the worker from the same decode.
    thumbnail = models.FileField(upload_to=thumbnail_upload_to, max_length=255, blank=True)
    preview = models.FileField(upload_to=preview_upload_to, max_length=255, blank=True)
    # Sizes of the files the worker made, for the dashboard's storage figures.
    derived_bytes = models.PositiveBigIntegerField(default=0)

    # From the file's own metadata; unknown stays empty.
    taken_at = models.DateTimeField(null=True, blank=True)
    taken_at_offset_minutes = models.SmallIntegerField(null=True, blank=True)
    camera_make = models.CharField(max_length=100, blank=True)
    camera_model = models.CharField(max_length=100, blank=True)
    latitude = models.FloatField(null=True, blank=True)
    longitude = models.FloatField(null=True, blank=True)
    # Where latitude/longitude lie, from the offline reverse geocoder (search.places); empty
    # without a position, or before the geocoder has seen it (``reindex_places``).
    country_code = models.CharField(max_length=2, blank=True)  # ISO 3166-1 alpha-2
    country = models.CharField(max_length=100, blank=True)
    region = models.CharField(max_length=200, blank=True)
    city = models.CharField(max_length=200, blank=True)

    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    # When the queue was last rung for this photo; the sweeper rings again if nothing happened.
    queued_at = models.DateTimeField(null=True, blank=True)
    processing_started_at = models.DateTimeField(null=True, blank=True)
    # The claim of the worker processing the photo: its attempt's token, and until when it
    # holds the photo unless it renews (search.ingest.services). Only that attempt may finish,
    # fail or release the photo; once the lease runs out, another worker may claim it.
    claim_token = models.UUIDField(null=True, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
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
            models.Index(fields=["owner", "taken_at"], name="photo_owner_taken"),
            # Place filters and their counts, and the places a query's words may name.
            models.Index(
                fields=["country_code", "city"],
                name="photo_place",
                condition=~models.Q(country_code=""),
            ),
            # Whether a library holds any ready video, asked by every search: a tiny index.
            models.Index(fields=["status"], name="photo_videos", condition=models.Q(kind="video")),
            # Live Photo halves looking for each other, per owner.
            models.Index(
                fields=["owner", "content_identifier"],
                name="photo_live_pairing",
                condition=~models.Q(content_identifier=""),
            ),
            # Every upload asks whether its bytes are already some photo's motion.
            models.Index(
                fields=["owner", "motion_sha256"],
                name="photo_motion_bytes",
                condition=~models.Q(motion_sha256=""),
            ),
            models.Index(
                fields=["motion_queued_at"],
                name="photo_motion_pending",
                condition=models.Q(motion_status="pending"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.original_filename} ({self.get_status_display()})"


class Embedding(models.Model):
    """One vector of an item under one model: a photo has one (``frame_ms`` 0), a video one
    per keyframe, at the keyframe's time.

    Keyed by (photo, model id, frame) so that vectors of a second model, of any dimension, can
    be computed beside the first while search keeps using the first. The column has no fixed
    dimension; each model gets its own partial HNSW index over ``vector::halfvec(dim)``
    (see ``search.vector_index``).
    """

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="embeddings")
    model_id = models.CharField(max_length=200)
    vector = VectorField()
    frame_ms = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "model_id", "frame_ms"], name="embedding_one_per_frame"
            ),
        ]
        indexes = [models.Index(fields=["model_id"], name="embedding_model")]

    def __str__(self) -> str:
        at = f" at {self.frame_ms} ms" if self.frame_ms else ""
        return f"{self.model_id} vector of photo {self.photo_id}{at}"


class PhotoText(models.Model):
    """The text read in an item by OCR (a video: in its poster frame), one row per item.

    ``words`` keeps each word as read with its confidence and box (fractions of the picture:
    ``{"text", "conf", "box": [left, top, right, bottom]}``); ``folded`` is the same words
    without case or accents (``workers.embedding.ocr.fold``), which ``search`` indexes in
    PostgreSQL's ``simple`` configuration, so folding never needs ``unaccent``.
    """

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    photo = models.OneToOneField(Photo, on_delete=models.CASCADE, related_name="text")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.PENDING)
    engine = models.CharField(max_length=32, blank=True)
    words = models.JSONField(default=list, blank=True)
    folded = models.TextField(blank=True)
    search = SearchVectorField(null=True)
    rotation = models.PositiveSmallIntegerField(default=0)
    ms = models.FloatField(null=True, blank=True)  # how long the reading took
    failure_reason = models.TextField(blank=True)
    attempts = models.PositiveIntegerField(default=0)
    read_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        indexes = [
            GinIndex(fields=["search"], name="photo_text_search"),
            models.Index(fields=["status", "updated_at"], name="photo_text_status"),
            models.Index(fields=["read_at"], name="photo_text_read_at"),
        ]

    def __str__(self) -> str:
        return f"text of photo {self.photo_id}: {self.get_status_display()}"


class Album(models.Model):
    """A named set of one owner's photos, which the owner may share with other users.

    Sharing gives read access: the people it is shared with see, search and open its photos.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="albums"
    )
    name = models.CharField(max_length=200)
    photos = models.ManyToManyField(Photo, related_name="albums", blank=True)
    shared_with = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="shared_albums", blank=True
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="album_unique_name_per_owner"),
        ]

    def __str__(self) -> str:
        return self.name


class PhotoTag(models.Model):
    """A zero-shot tag: a word of the tag vocabulary that the model finds in the photo."""

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="tags")
    model_id = models.CharField(max_length=200)
    name = models.CharField(max_length=100)
    score = models.FloatField()  # the tag's probability among the others of its group

    class Meta:
        ordering = ["-score", "name"]
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "model_id", "name"], name="photo_tag_once_per_model"
            ),
        ]
        indexes = [models.Index(fields=["model_id", "name"], name="photo_tag_model_name")]

    def __str__(self) -> str:
        return self.name


class NearDuplicatePair(models.Model):
    """Two photos of one owner whose vectors (under one model) are within the widest
    near-duplicate distance that can be chosen; the duplicates page narrows it further."""

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    other = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    model_id = models.CharField(max_length=200)
    distance = models.FloatField()  # cosine distance

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "other", "model_id"], name="near_duplicate_pair_once"
            ),
            # Each pair is stored once, smaller id first.
            models.CheckConstraint(
                condition=models.Q(photo__lt=models.F("other")), name="near_duplicate_pair_order"
            ),
        ]
        indexes = [models.Index(fields=["model_id", "distance"], name="near_duplicate_distance")]

    def __str__(self) -> str:
        return f"photos {self.photo_id} and {self.other_id}: {self.distance:.4f}"


class SearchLog(models.Model):
    """One search, for the dashboard: what was asked, how many results, how fast."""

    class Kind(models.TextChoices):
        TEXT = "text", "Text"
        IMAGE = "image", "Image"
        SIMILAR = "similar", "Similar"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, related_name="+"
    )
    kind = models.CharField(max_length=16, choices=Kind.choices)
    query = models.CharField(max_length=500, blank=True)
    filters = models.JSONField(default=dict, blank=True)
    via_api = models.BooleanField(default=False)
    result_count = models.PositiveIntegerField()
    top_score = models.FloatField(null=True, blank=True)
    latency_ms = models.FloatField()
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.kind}: {self.query or '(no text)'}"


class ApiToken(models.Model):
    """A bearer token for the JSON API. Only its SHA-256 is stored; the token is shown once."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens"
    )
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True)
    prefix = models.CharField(max_length=8)  # the token's first characters, to tell them apart
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"


class ClipModel(models.Model):
    """A CLIP model chosen on the dashboard. One is active (search and new photos use it);
    during a switch another one is being prepared and built beside it.

    Without any row, the model configured in the settings is the active one.
    """

    class State(models.TextChoices):
        PREPARING = "preparing", "Preparing"  # a worker is loading it
        BUILDING = "building", "Building"  # vectors are being computed for every photo
        ACTIVE = "active", "Active"
        RETIRING = "retiring", "Retiring"  # its vectors are being dropped
        RETIRED = "retired", "Retired"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

    name = models.CharField(max_length=100)  # an open_clip architecture
    pretrained = models.CharField(max_length=500, blank=True)  # tag, hf-hub: id or checkpoint
    # fp32 or int8 (a model id of its own: the switch moves a library between precisions).
    precision = models.CharField(max_length=8, default="fp32")
    model_id = models.CharField(max_length=200, blank=True)  # known once loaded
    dim = models.PositiveIntegerField(null=True, blank=True)
    state = models.CharField(max_length=16, choices=State.choices)
    failure_reason = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["state"], condition=models.Q(state="active"), name="clip_model_one_active"
            ),
            # One switch at a time.
            models.UniqueConstraint(
                models.Value(1),
                condition=models.Q(state__in=["preparing", "building"]),
                name="clip_model_one_switch",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.pretrained or 'random init'}): {self.get_state_display()}"


class Pipeline(models.Model):
    """Switches for the whole ingestion pipeline (a single row)."""

    paused = models.BooleanField(default=False)
    paused_at = models.DateTimeField(null=True, blank=True)
    # OCR can be turned off here as well as by MEDIASEARCH_OCR_ENABLED; both must be on.
    ocr_enabled = models.BooleanField(default=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return "paused" if self.paused else "running"
