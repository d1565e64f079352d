"""The Live Photo and motion photo engine: identifiers from headers, the MP4 inside a JPEG."""

from __future__ import annotations

import io
import struct

import pytest
from PIL import ExifTags, Image

from tests.conftest import encode, make_image
from workers.embedding.demo.live_fixtures import (
    apple_maker_note,
    live_motion_bytes,
    live_still_bytes,
    motion_photo_bytes,
    motion_photo_xmp,
)
from workers.embedding.demo.scenes import Scene
from workers.embedding.live import (
    MotionPhotoError,
    apple_content_identifier,
    motion_photo_length,
    motion_photo_video,
    still_motion,
)
from workers.embedding.video import read_content_identifier

ID = "9A1B2C3D-0000-4E5F-8899-AABBCCDDEEFF"
STAR = Scene("star", "red", 1, "large", "middle", "white", "plain")


def exif_with(note: bytes) -> Image.Exif:
    exif = Image.Exif()
    exif.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.MakerNote] = note
    return exif


@pytest.mark.parametrize("image_format", ["JPEG", "HEIF"])
def test_a_live_stills_identifier_is_read_from_its_apple_makernote(image_format):
    data = live_still_bytes(STAR, content_identifier=ID, image_format=image_format)
    source = io.BytesIO(data)
    source.seek(5)

    assert still_motion(source, image_format).content_identifier == ID
    assert source.tell() == 5  # the upload reads on from where it was


def test_a_little_endian_makernote_with_other_tags_first_is_read():
    value = ID.encode() + b"\0"
    header = b"Apple iOS\0\0\x01II"
    entries = struct.pack("<HHII", 0x0001, 9, 1, 14) + struct.pack(
        "<HHII", 0x0011, 2, len(value), 44
    )
    note = header + struct.pack("<H", 2) + entries + b"\0\0\0\0" + value
    assert apple_content_identifier(exif_with(note)) == ID


@pytest.mark.parametrize(
    "note",
    [
        b"Nikon\0\x02\x10\0\0MM\0*",  # another maker's
        b"Apple iOS\0\0\x01MM\x00\x01",  # an IFD cut short
        apple_maker_note(ID)[:-20],  # the value points past the end
        apple_maker_note("<script>"),  # not an identifier
    ],
)
def test_a_foreign_or_broken_makernote_gives_no_identifier(note):
    assert apple_content_identifier(exif_with(note)) == ""


def test_a_plain_photo_has_no_motion():
    assert still_motion(io.BytesIO(encode(make_image())), "JPEG") == still_motion(
        io.BytesIO(b""), "PNG"
    )


@pytest.mark.parametrize("style", ["container", "microvideo"])
def test_both_forms_of_motion_photo_xmp_give_the_videos_length(style):
    assert motion_photo_length(motion_photo_xmp(12345, style=style)) == 12345


def test_xmp_without_a_motion_photo_gives_none():
    assert motion_photo_length(b'<x:xmpmeta GCamera:MotionPhoto="0"/>') is None
    assert motion_photo_length(b"") is None


def test_the_mp4_is_found_where_the_xmp_says():
    data = motion_photo_bytes(STAR, [(1.0, STAR)])
    offset, length = motion_photo_video(io.BytesIO(data))

    assert offset + length == len(data)
    assert data[offset + 4 : offset + 8] == b"ftyp"


def test_an_mp4_cut_off_the_end_is_refused_with_a_reason():
    data = motion_photo_bytes(STAR, [(1.0, STAR)])
    with pytest.raises(MotionPhotoError, match="the embedded video is missing or damaged"):
        motion_photo_video(io.BytesIO(data[:-100]))
    with pytest.raises(MotionPhotoError, match="announces no embedded video"):
        motion_photo_video(io.BytesIO(encode(make_image())))


def test_a_movs_identifier_is_read_without_decoding_and_others_have_none():
    mov = live_motion_bytes([(0.5, STAR)], content_identifier=ID, codec="h264")
    assert read_content_identifier(io.BytesIO(mov)) == ID
    assert read_content_identifier(io.BytesIO(b"<!doctype html>")) == ""
