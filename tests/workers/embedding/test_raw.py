"""Camera RAW: DNGs made by workers/embedding/demo/raw_fixtures.py, decoded by LibRaw.

Only DNG can be built here. CR2/CR3, NEF, ARW, RAF, ORF and RW2 need each maker's encoder, so
they are tested for sniffing only, from synthetic headers that hold no image; whether LibRaw
decodes real files of theirs is left to a corpus of real camera files (docs/RAW.md).
"""

import io
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from PIL import Image

from tests.workers.embedding.vectors import cosines
from workers.embedding.demo.raw_fixtures import dng_bytes, synthetic_header
from workers.embedding.demo.scenes import COLOURS, Scene, render
from workers.embedding.images import (
    ImageDecodeError,
    decode_photo,
    format_info,
    identify_format,
    prepare_photo,
)
from workers.embedding.model import DEMO_MODEL_NAME, DEMO_PRETRAINED, ModelSpec, load_engine
from workers.embedding.raw import decode_raw

SCENE = Scene("square", "red", 1, "large", "middle", "blue", "plain")
PICTURE = render(SCENE, (256, 192))
WITH_PREVIEW = dng_bytes(PICTURE, preview=PICTURE, gps=(48.8584, 2.2945))
WITHOUT_PREVIEW = dng_bytes(PICTURE)
RED, BLUE = np.array(COLOURS["red"]), np.array(COLOURS["blue"])


def centre_and_corner(image: Image.Image) -> tuple[np.ndarray, np.ndarray]:
    pixels = np.asarray(image.convert("RGB"), dtype=np.int32)
    height, width = pixels.shape[:2]
    return pixels[height // 2, width // 2], pixels[height // 10, width // 10]


def assert_close(pixel: np.ndarray, colour: np.ndarray, tolerance: int = 45) -> None:
    assert np.abs(pixel - colour).max() <= tolerance, (pixel.tolist(), colour.tolist())


def test_a_dng_is_sniffed_as_dng_though_pillow_opens_it_as_a_tiff():
    assert Image.open(io.BytesIO(WITH_PREVIEW)).format == "TIFF"  # its IFD0 thumbnail
    handle = io.BytesIO(WITH_PREVIEW)
    assert identify_format(handle) == "DNG"
    assert handle.tell() == 0
    assert (format_info("DNG").mime_type, format_info("DNG").extension) == (
        "image/x-adobe-dng",
        ".dng",
    )


def test_an_ordinary_tiff_is_still_a_tiff():
    buffer = io.BytesIO()
    PICTURE.save(buffer, format="TIFF", compression="tiff_lzw")
    assert identify_format(io.BytesIO(buffer.getvalue())) == "TIFF"
    assert decode_photo(buffer.getvalue()).format == "TIFF"


@pytest.mark.parametrize("kind", ["CR2", "CR3", "NEF", "ARW", "RAF", "ORF", "RW2"])
def test_other_raw_formats_are_sniffed_from_their_headers_and_refused_when_not_whole(kind):
    # Synthetic headers only: no encoder for these formats is at hand.
    from workers.embedding.raw import raw_format

    assert raw_format(io.BytesIO(synthetic_header(kind))) == kind
    with pytest.raises(ImageDecodeError, match="RAW"):
        identify_format(io.BytesIO(synthetic_header(kind)))


def test_a_cfa_tiff_of_a_maker_outside_the_allowlist_is_refused_not_taken_for_a_tiff():
    # The synthetic NEF header with another maker: a Pentax PEF is laid out the same way.
    data = synthetic_header("NEF").replace(b"NIKON CORPORATION", b"RICOH IMAGING CO.")
    with pytest.raises(ImageDecodeError, match=r"^a camera RAW file from Ricoh Imaging Co\. in"):
        identify_format(io.BytesIO(data))


def test_the_embedded_preview_is_used_when_it_is_large_enough():
    # The sensor data is black: only the preview can give the scene's colours.
    black = Image.new("RGB", PICTURE.size)
    data = dng_bytes(PICTURE, preview=PICTURE, raw_picture=black)

    picture = decode_raw(io.BytesIO(data), min_side=256, max_pixels=10**8)

    assert picture.from_preview and picture.image.size == (256, 192)
    centre, corner = centre_and_corner(picture.image)
    assert_close(centre, RED)
    assert_close(corner, BLUE)


def test_without_a_large_preview_the_raw_is_demosaiced_to_the_right_colours():
    picture = decode_raw(io.BytesIO(WITHOUT_PREVIEW), min_side=256, max_pixels=10**8)

    assert not picture.from_preview  # IFD0's 128 px thumbnail is too small
    assert (picture.image.mode, picture.image.size) == ("RGB", (256, 192))
    centre, corner = centre_and_corner(picture.image)
    assert_close(centre, RED)
    assert_close(corner, BLUE)


@pytest.mark.parametrize(("min_side", "size"), [(0, (256, 192)), (100, (128, 96))])
@pytest.mark.parametrize("data", [WITH_PREVIEW, WITHOUT_PREVIEW], ids=["preview", "no-preview"])
def test_decode_photo_gives_the_full_size_and_a_reduced_picture_when_asked(data, min_side, size):
    decoded = decode_photo(data, min_side=min_side)
    assert (decoded.format, decoded.width, decoded.height) == ("DNG", 256, 192)
    assert decoded.image.size == size
    assert_close(centre_and_corner(decoded.image)[0], RED)


@pytest.mark.parametrize("preview", [True, False], ids=["preview", "demosaic"])
def test_the_orientation_of_the_raw_turns_the_picture_upright(preview):
    picture = render(Scene("square", "red", 1, "small", "left", "white", "plain"), (256, 192))
    data = dng_bytes(picture, preview=picture if preview else None, orientation=6)

    decoded = decode_photo(data)

    assert (decoded.width, decoded.height, decoded.image.size) == (192, 256, (192, 256))
    # Orientation 6: the stored picture is turned a quarter clockwise to be upright, so the
    # square on the stored left is at the top.
    pixels = np.asarray(decoded.image, dtype=np.int32)
    top, bottom = pixels[: 256 // 3].reshape(-1, 3), pixels[-256 // 3 :].reshape(-1, 3)
    assert (np.abs(top - RED).max(axis=1) < 60).sum() > 100
    assert (np.abs(bottom - RED).max(axis=1) < 60).sum() == 0


def test_metadata_comes_from_the_raw():
    metadata = decode_photo(WITH_PREVIEW).metadata
    zone = timezone(timedelta(hours=2))
    assert metadata.taken_at == datetime(2024, 5, 17, 14, 30, 5, tzinfo=zone)
    assert metadata.taken_at_offset_minutes == 120
    assert (metadata.camera_make, metadata.camera_model) == ("MediaSearch", "Demo Camera DNG")
    assert (metadata.latitude, metadata.longitude) == pytest.approx((48.8584, 2.2945), abs=1e-4)


def test_a_date_without_a_zone_is_taken_as_utc():
    metadata = decode_photo(dng_bytes(PICTURE, offset=None)).metadata
    assert (metadata.taken_at, metadata.taken_at_offset_minutes) == (
        datetime(2024, 5, 17, 14, 30, 5, tzinfo=UTC),
        None,
    )


@pytest.mark.parametrize("keep", [0.99, 0.5, 0.02])
def test_a_truncated_dng_is_refused_with_a_reason(keep):
    data = WITH_PREVIEW[: int(len(WITH_PREVIEW) * keep)]
    with pytest.raises(ImageDecodeError, match="RAW"):
        identify_format(io.BytesIO(data))
    with pytest.raises(ImageDecodeError, match="RAW"):
        decode_photo(data)


def test_a_dng_over_the_pixel_limit_is_refused():
    with pytest.raises(ImageDecodeError, match="256x192 pixels, more than the limit of 10,000"):
        identify_format(io.BytesIO(WITHOUT_PREVIEW), max_pixels=10_000)
    with pytest.raises(ImageDecodeError, match="more than the limit"):
        decode_photo(WITHOUT_PREVIEW, max_pixels=10_000)


@pytest.mark.parametrize("data", [WITH_PREVIEW, WITHOUT_PREVIEW], ids=["preview", "no-preview"])
def test_prepare_photo_makes_the_renditions_of_a_dng(data):
    prepared = prepare_photo(data, sides=(128, 1600), model_side=96)
    thumbnail, preview = (Image.open(io.BytesIO(jpeg)) for jpeg in prepared.renditions)
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (128, 96))
    assert (preview.format, preview.size) == ("JPEG", (256, 192))  # never larger than the RAW
    assert_close(centre_and_corner(thumbnail)[0], RED)


@pytest.fixture(scope="module")
def engine():
    return load_engine(ModelSpec(DEMO_MODEL_NAME, DEMO_PRETRAINED))


@pytest.mark.parametrize("data", [WITH_PREVIEW, WITHOUT_PREVIEW], ids=["preview", "demosaic"])
def test_a_dng_embeds_like_the_jpeg_it_was_made_from(engine, data):
    buffer = io.BytesIO()
    PICTURE.save(buffer, format="JPEG", quality=92)
    source = decode_photo(buffer.getvalue()).image
    raw = prepare_photo(data, sides=(384, 1600), model_side=engine.input_side).model_image

    vectors = engine.encode_images([source, raw])

    assert cosines(vectors[:1], vectors[1:])[0] >= 0.98
