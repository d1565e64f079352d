from datetime import UTC, datetime, timedelta, timezone

from PIL import Image

from tests.conftest import encode, make_image
from workers.embedding.images import PhotoMetadata, decode_photo


def exif_with(**tags) -> bytes:
    exif = Image.Exif()
    exif[0x010F] = "Fujifilm"  # Make
    exif[0x0110] = "X100V"  # Model
    details = exif.get_ifd(0x8769)
    details[0x9003] = tags.get("taken", "2024:07:14 18:30:05")  # DateTimeOriginal
    if "offset" in tags:
        details[0x9011] = tags["offset"]  # OffsetTimeOriginal
    if tags.get("gps"):
        gps = exif.get_ifd(0x8825)
        gps[1], gps[2] = "N", (48.0, 51.0, 29.6)
        gps[3], gps[4] = "W", (2.0, 17.0, 40.2)
    return exif.tobytes()


def test_reads_date_with_zone_camera_and_position():
    data = encode(make_image(), exif=exif_with(offset="+02:00", gps=True))

    metadata = decode_photo(data).metadata

    assert metadata == PhotoMetadata(
        taken_at=datetime(2024, 7, 14, 18, 30, 5, tzinfo=timezone(timedelta(hours=2))),
        taken_at_offset_minutes=120,
        camera_make="Fujifilm",
        camera_model="X100V",
        latitude=48.8582222,
        longitude=-2.2945,
    )


def test_date_without_zone_is_kept_as_utc_and_says_the_zone_is_unknown():
    metadata = decode_photo(encode(make_image(), exif=exif_with())).metadata
    assert metadata.taken_at == datetime(2024, 7, 14, 18, 30, 5, tzinfo=UTC)
    assert metadata.taken_at_offset_minutes is None


def test_nonsense_dates_and_missing_metadata_are_unknown():
    assert (
        decode_photo(
            encode(make_image(), exif=exif_with(taken="0000:00:00 00:00:00"))
        ).metadata.taken_at
        is None
    )
    assert decode_photo(encode(make_image(), "PNG")).metadata == PhotoMetadata()
