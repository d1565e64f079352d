"""Every kind of file people really upload ends ready, or refused/failed with a clear reason.

Files go through the real upload view, then through ``embed_waiting`` (what the workers run).
"""

import io
import struct
import zlib

import numpy as np
import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from PIL import Image

from search.models import Embedding, Photo
from tests.conftest import encode, make_image, upload_file
from tests.pipeline import embed_waiting
from workers.active_engine import get_engine
from workers.embedding.images import decode_image

pytestmark = pytest.mark.django_db


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims huge dimensions (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def cmyk_jpeg() -> bytes:
    return encode(make_image().convert("CMYK"))


def sixteen_bit_png() -> bytes:
    return encode(Image.new("I;16", (64, 48), 40000), "PNG")


def palette_png_with_transparency() -> bytes:
    image = make_image().convert("P")
    return encode(image, "PNG", transparency=0)


def animated_gif() -> bytes:
    frames = [make_image(color=c) for c in ("red", "green", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 8  # rotate 90° counter-clockwise to display
    return encode(make_image(size=(320, 240)), exif=exif.tobytes())


def corrupt_exif_jpeg() -> bytes:
    data = encode(make_image(), exif=b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff\x01\x0f")
    return data


def truncated_jpeg() -> bytes:
    data = encode(make_image(size=(400, 400)), quality=95)
    return data[: len(data) // 2]


def upload(client, name: str, data: bytes):
    response = client.post(reverse("search:upload"), {"photos": [upload_file(name, data)]})
    messages = [str(m) for m in get_messages(response.wsgi_request)]
    photo = Photo.objects.order_by("-id").first()
    if photo is not None:
        assert set(embed_waiting()) == {photo.pk}
        photo.refresh_from_db()
    return photo, messages


REFUSED = [
    ("empty.jpg", b"", "empty.jpg: the file is empty"),
    ("notes.jpg", b"shopping list: milk, eggs", "notes.jpg: not a supported image"),
    (
        "page.jpg",
        b"<!doctype html><html><script>alert(1)</script></html>",
        "page.jpg: not a supported image",
    ),
    (
        "logo.svg",
        b"<svg xmlns='http://www.w3.org/2000/svg'><rect/></svg>",
        "logo.svg: not a supported image",
    ),
    (
        "scan.pdf",
        b"%PDF-1.7\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF",
        "scan.pdf: not a supported image",
    ),
    (
        "bomb.png",
        png_claiming(60000, 60000),
        "bomb.png: the image is 60000x60000 pixels, more than the limit of 100,000,000",
    ),
]


@pytest.mark.parametrize(("name", "data", "reason"), REFUSED, ids=[r[0] for r in REFUSED])
def test_refused_at_upload_with_the_file_named(alice_client, name, data, reason):
    photo, messages = upload(alice_client, name, data)
    assert photo is None
    assert len(messages) == 1 and messages[0].startswith(reason)


def test_file_over_the_size_limit_is_refused(alice_client, settings):
    settings.MEDIASEARCH_MAX_UPLOAD_BYTES = 1024 * 1024
    data = encode(Image.effect_noise((1200, 1200), 80).convert("RGB"), quality=100)
    assert len(data) > 1024 * 1024
    photo, messages = upload(alice_client, "huge.jpg", data)
    assert photo is None
    assert messages == ["huge.jpg: the file is larger than the 1 MB limit"]


def test_pixel_limit_is_a_setting(alice_client, settings):
    settings.MEDIASEARCH_MAX_IMAGE_PIXELS = 10_000
    photo, messages = upload(alice_client, "big.png", encode(make_image(size=(200, 100)), "PNG"))
    assert photo is None
    assert messages == ["big.png: the image is 200x100 pixels, more than the limit of 10,000"]


def test_too_many_files_in_one_request_gets_a_clear_answer(alice_client, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 3
    files = [upload_file(f"{i}.jpg", encode(make_image())) for i in range(4)]
    response = alice_client.post(reverse("search:upload"), {"photos": files})
    assert response.status_code == 400
    assert "Too many files in one upload" in response.content.decode()
    assert "Upload at most\n  3 files at a time" in response.content.decode()
    assert Photo.objects.count() == 0


def test_truncated_jpeg_fails_in_the_worker_with_a_reason(alice_client):
    photo, messages = upload(alice_client, "half.jpg", truncated_jpeg())
    assert messages == ["1 photo(s) uploaded and queued."]
    assert photo.status == "failed"
    assert photo.failure_reason.startswith("the image data is damaged or incomplete")
    assert not Embedding.objects.exists()


ACCEPTED = [
    ("cmyk.jpg", cmyk_jpeg, (320, 240)),
    ("deep.png", sixteen_bit_png, (64, 48)),
    ("palette.png", palette_png_with_transparency, (320, 240)),
    ("animated.gif", animated_gif, (320, 240)),
    ("rotated.jpg", rotated_jpeg, (240, 320)),
    ("bad-exif.jpg", corrupt_exif_jpeg, (320, 240)),
    ("photo.webp", lambda: encode(make_image(), "WEBP"), (320, 240)),
    ("photo.tiff", lambda: encode(make_image(), "TIFF"), (320, 240)),
    ("photo.bmp", lambda: encode(make_image(), "BMP"), (320, 240)),
    ("photo.heic", lambda: encode(make_image(), "HEIF"), (320, 240)),
    ("photo.avif", lambda: encode(make_image(), "AVIF"), (320, 240)),
    ("no extension", lambda: encode(make_image()), (320, 240)),
]


@pytest.mark.parametrize(("name", "make", "size"), ACCEPTED, ids=[a[0] for a in ACCEPTED])
def test_unusual_but_valid_images_become_searchable(alice_client, name, make, size):
    photo, messages = upload(alice_client, name, make())
    assert messages == ["1 photo(s) uploaded and queued."]
    assert (photo.status, photo.failure_reason) == ("ready", "")
    assert (photo.width, photo.height) == size
    assert Embedding.objects.filter(photo=photo).count() == 1
    assert Image.open(photo.thumbnail.open("rb")).mode == "RGB"


def test_every_kind_in_one_batch_keeps_each_photos_own_outcome(alice_client, alice, settings):
    """All the accepted kinds and a damaged file, uploaded together and embedded in one batch:
    the failure in the middle shifts nobody's vector, size or thumbnail onto another photo."""
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = len(ACCEPTED) + 1
    half = len(ACCEPTED) // 2
    files = [(name, make()) for name, make, _ in ACCEPTED]
    files.insert(half, ("half.jpg", truncated_jpeg()))
    alice_client.post(
        reverse("search:upload"), {"photos": [upload_file(name, data) for name, data in files]}
    )
    photos = {photo.original_filename: photo for photo in Photo.objects.filter(owner=alice)}
    assert len(photos) == len(files)

    assert embed_waiting(batch_size=len(files)) == {
        photo.pk: Photo.Status.FAILED if name == "half.jpg" else Photo.Status.READY
        for name, photo in photos.items()
    }

    assert not Embedding.objects.filter(photo=photos["half.jpg"]).exists()
    engine = get_engine()
    for name, make, size in ACCEPTED:
        photo = Photo.objects.get(pk=photos[name].pk)
        assert (photo.width, photo.height) == size, name
        stored = np.asarray(Embedding.objects.get(photo=photo).vector)
        alone = engine.encode_images([decode_image(io.BytesIO(make()))])[0]
        assert float(stored @ alone) >= 0.9999, name


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("../../../etc/passwd.jpg", "passwd.jpg"),
        ("..\\..\\windows\\system32\\evil.jpg", "evil.jpg"),
        ("фото отпуск 🌊.jpg", "фото отпуск 🌊.jpg"),
        ("a" * 300 + ".jpg", "a" * 251 + ".jpg"),
    ],
)
def test_awkward_file_names_are_kept_as_data_and_stored_under_generated_names(
    alice_client, alice, name, shown
):
    photo, _ = upload(alice_client, name, encode(make_image()))
    assert photo.original_filename == shown
    assert photo.file.name.startswith(f"originals/{alice.pk}/")
    assert ".." not in photo.file.name and len(photo.file.name) < 80
