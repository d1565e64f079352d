"""A batch of distinct photos, embedded in one call: every vector, tag, size, date and thumbnail
lands on the photo it was computed from (issue 14: a batch of one never shows a mix-up)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import pytest
from PIL import Image, ImageChops

from search.ingest.services import photos_embed
from search.models import Embedding, Photo, PhotoTag
from search.photos.services import photo_create
from search.tags.services import vector_tags
from tests.conftest import encode, upload_file
from tests.search.photos.test_bad_input import truncated_jpeg
from tests.workers.embedding.test_metadata import exif_with
from workers.active_engine import get_engine
from workers.embedding.demo.scenes import Scene, render
from workers.embedding.images import decode_image

pytestmark = pytest.mark.django_db


@dataclass(frozen=True)
class Upload:
    """A distinct picture: its own colours, shape, size and (or no) date taken."""

    colour: str
    shape: str
    background: str
    size: tuple[int, int]
    taken: datetime | None

    def data(self) -> bytes:
        scene = Scene(shape=self.shape, colour=self.colour, count=1, size="large",
                      position="middle", background=self.background, pattern="plain",
                      layout_seed=0)  # fmt: skip
        image = render(scene, self.size)
        if self.taken is None:
            return encode(image, quality=92)
        return encode(image, quality=92, exif=exif_with(taken=f"{self.taken:%Y:%m:%d %H:%M:%S}"))


UPLOADS = [
    Upload("red", "star", "white", (320, 240), datetime(2021, 3, 4, 5, 6, 7, tzinfo=UTC)),
    Upload("blue", "circle", "yellow", (240, 320), datetime(2022, 8, 9, 10, 11, 12, tzinfo=UTC)),
    Upload("green", "square", "black", (300, 300), None),
    Upload("yellow", "triangle", "purple", (400, 200), datetime(2023, 1, 2, 3, 4, 5, tzinfo=UTC)),
    Upload("purple", "square", "white", (200, 260), datetime(2020, 12, 31, 23, 0, 0, tzinfo=UTC)),
]


def upload_all(owner, uploads) -> list[tuple[Photo, bytes]]:
    made = []
    for i, item in enumerate(uploads):
        data = item if isinstance(item, bytes) else item.data()
        photo = photo_create(owner=owner, file=upload_file(f"{i}.jpg", data)).photo
        made.append((photo, data))
    return made


def assert_photo_is_its_own(photo: Photo, data: bytes, item: Upload) -> None:
    """Its vector is its own image's, encoded alone; so are its tags, size, date and thumbnail."""
    engine = get_engine()
    photo.refresh_from_db()
    alone = engine.encode_images([decode_image(data)])[0]
    stored = np.asarray(Embedding.objects.get(photo=photo, model_id=engine.model_id).vector)
    assert np.linalg.norm(stored) == pytest.approx(1.0, abs=1e-5)
    assert float(stored @ alone) >= 0.9999, item

    (expected_tags,) = vector_tags(alone[None, :], model_id=engine.model_id)
    stored_tags = dict(
        PhotoTag.objects.filter(photo=photo, model_id=engine.model_id).values_list("name", "score")
    )
    assert stored_tags == pytest.approx(dict(expected_tags), abs=0.01), item
    assert {item.colour, f"{item.background} background"} <= set(stored_tags), item

    assert (photo.width, photo.height) == item.size
    assert photo.taken_at == item.taken
    assert photo.camera_model == ("X100V" if item.taken else "")
    with photo.thumbnail.open("rb") as handle:
        thumbnail = Image.open(handle).convert("RGB")
        thumbnail.load()
    original = decode_image(data).resize(thumbnail.size)
    difference = np.asarray(ImageChops.difference(thumbnail, original), dtype=np.float32)
    assert float(difference.mean()) < 8, item


@pytest.mark.parametrize("threads", [1, 4])  # decoded in turn, and on a thread pool
def test_each_photo_of_a_batch_gets_its_own_vector_tags_and_metadata(alice, settings, threads):
    settings.MEDIASEARCH_DECODE_THREADS = threads
    made = upload_all(alice, UPLOADS)
    ids = [photo.pk for photo, _ in made]

    # One call: its own photo (not the oldest) and every other waiting one, in one pass.
    assert photos_embed(photo_id=ids[2], batch_size=len(made)) == dict.fromkeys(
        ids, Photo.Status.READY
    )

    vectors = {row.photo_id: np.asarray(row.vector) for row in Embedding.objects.all()}
    assert sorted(vectors) == sorted(ids)
    for (photo, data), item in zip(made, UPLOADS, strict=True):
        assert_photo_is_its_own(photo, data, item)
    # The pictures are distinct enough that a vector on the wrong photo could not pass.
    matrix = np.stack([vectors[pk] for pk in ids])
    similarity = matrix @ matrix.T
    assert float(similarity[~np.eye(len(ids), dtype=bool)].max()) < 0.99


def test_a_damaged_photo_in_the_middle_of_a_batch_shifts_nothing_onto_the_others(alice):
    middle = len(UPLOADS) // 2
    made = upload_all(alice, [*UPLOADS[:middle], truncated_jpeg(), *UPLOADS[middle:]])
    damaged, _ = made.pop(middle)

    statuses = photos_embed(photo_id=made[0][0].pk, batch_size=len(made) + 1)

    assert statuses == {
        damaged.pk: Photo.Status.FAILED,
        **{photo.pk: Photo.Status.READY for photo, _ in made},
    }
    assert not Embedding.objects.filter(photo=damaged).exists()
    assert not PhotoTag.objects.filter(photo=damaged).exists()
    for (photo, data), item in zip(made, UPLOADS, strict=True):
        assert_photo_is_its_own(photo, data, item)
