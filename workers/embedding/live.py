"""Live Photos and motion photos: a still with a short clip of motion.

- **Apple Live Photos** are two files: a HEIC/JPEG still and a MOV, which carry the same
  content identifier (a UUID): the still in its Apple MakerNote (tag 0x0011), the MOV in the
  QuickTime key ``com.apple.quicktime.content.identifier`` (``video.read_content_identifier``).
- **Android motion photos** are one file: a JPEG with an MP4 appended, which its XMP announces
  (``GCamera:MicroVideo`` with ``MicroVideoOffset``, or ``GCamera:MotionPhoto`` with a
  ``Container:Directory`` item of semantic ``MotionPhoto`` and its ``Item:Length``); both
  count the MP4's bytes from the end of the file.

Plain Python and Pillow, no Django. Errors a user's file can cause are ``MotionPhotoError``
with a reason fit to show them.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from typing import BinaryIO

from PIL import ExifTags, Image

# Importing images registers the HEIC opener and keeps Pillow's pixel guard as it sets it.
from workers.embedding import images as _images  # noqa: F401

APPLE_MAKERNOTE_PREFIX = b"Apple iOS\x00"
_MAKERNOTE_TAG = 0x927C  # in the EXIF IFD
_CONTENT_IDENTIFIER_TAG = 0x0011  # in Apple's MakerNote
_ASCII = 2
# Formats whose files can be one half of a Live Photo, or hold a motion photo's MP4.
LIVE_STILL_FORMATS = ("JPEG", "MPO", "HEIF")
MOTION_PHOTO_FORMATS = ("JPEG", "MPO")


class MotionPhotoError(ValueError):
    """A motion photo's embedded video is missing or damaged; ``str(error)`` is the reason."""


@dataclass(frozen=True)
class StillMotion:
    """What a still says about motion that belongs to it."""

    content_identifier: str = ""  # Apple's Live Photo id ("" if none)
    motion_photo: bool = False  # an Android motion photo: an MP4 is appended to the file


def still_motion(source: BinaryIO, image_format: str) -> StillMotion:
    """Read only the headers of a still (``image_format`` as ``identify_format`` named it):
    its Live Photo content identifier and whether it is a motion photo. Never raises for a
    missing or malformed MakerNote or XMP: the still is then a plain still."""
    if image_format not in LIVE_STILL_FORMATS:
        return StillMotion()
    position = source.tell()
    try:
        with Image.open(source) as image:
            exif = image.getexif()
            xmp = image.info.get("xmp") or b""
            identifier = apple_content_identifier(exif)
    except Exception:  # a header that Pillow read once already; nothing more to learn
        return StillMotion()
    finally:
        source.seek(position)
    motion = image_format in MOTION_PHOTO_FORMATS and motion_photo_length(xmp) is not None
    return StillMotion(content_identifier=identifier, motion_photo=motion)


def apple_content_identifier(exif: Image.Exif) -> str:
    """The content identifier in an Apple MakerNote of ``exif``, or "" if it has none."""
    try:
        note = exif.get_ifd(ExifTags.IFD.Exif).get(_MAKERNOTE_TAG)
    except Exception:
        return ""
    if not isinstance(note, bytes) or not note.startswith(APPLE_MAKERNOTE_PREFIX):
        return ""
    return _makernote_ascii(note, _CONTENT_IDENTIFIER_TAG)


def _makernote_ascii(note: bytes, tag: int) -> str:
    # "Apple iOS\0", a version (2 bytes), the byte order ("MM"/"II"), then an IFD whose value
    # offsets count from the start of the MakerNote.
    order = {b"MM": ">", b"II": "<"}.get(note[12:14])
    if order is None or len(note) < 16:
        return ""
    (count,) = struct.unpack_from(order + "H", note, 14)
    for index in range(min(count, 512)):
        at = 16 + 12 * index
        if at + 12 > len(note):
            return ""
        entry_tag, entry_type, length = struct.unpack_from(order + "HHI", note, at)
        if entry_tag != tag or entry_type != _ASCII:
            continue
        if length <= 4:
            raw = note[at + 8 : at + 8 + length]
        else:
            (offset,) = struct.unpack_from(order + "I", note, at + 8)
            raw = note[offset : offset + length]
        if len(raw) < length:
            return ""  # the value lies past the end of the MakerNote: cut short
        text = raw.split(b"\x00", 1)[0].decode("ascii", "replace").strip()
        return text[:64] if _IDENTIFIER.fullmatch(text) else ""
    return ""


_IDENTIFIER = re.compile(r"[0-9A-Za-z-]{8,64}")
_MICRO_VIDEO = re.compile(rb"MicroVideo(?:\s*=\s*\"1\"|>\s*1\s*<)")
_MICRO_OFFSET = re.compile(rb"MicroVideoOffset(?:\s*=\s*\"(\d+)\"|>\s*(\d+)\s*<)")
_MOTION_PHOTO = re.compile(rb"GCamera:MotionPhoto(?:\s*=\s*\"1\"|>\s*1\s*<)")
_ITEM = re.compile(rb"<Container:Item\b([^>]*)>")
_ATTRIBUTE = re.compile(rb"Item:(\w+)\s*=\s*\"([^\"]*)\"")


def motion_photo_length(xmp: bytes | str) -> int | None:
    """How many bytes at the end of the file the XMP says the motion photo's MP4 takes, or
    None when the XMP announces no motion photo (or no length)."""
    data = xmp.encode() if isinstance(xmp, str) else xmp
    if _MOTION_PHOTO.search(data):
        for item in _ITEM.finditer(data):
            attributes = dict(_ATTRIBUTE.findall(item.group(1)))
            if attributes.get(b"Semantic") == b"MotionPhoto":
                length = attributes.get(b"Length", b"")
                return int(length) if length.isdigit() and int(length) > 0 else None
    if _MICRO_VIDEO.search(data):
        match = _MICRO_OFFSET.search(data)
        if match:
            length = int(match.group(1) or match.group(2))
            return length if length > 0 else None
    return None


def motion_photo_video(source: BinaryIO) -> tuple[int, int]:
    """Where a motion photo's MP4 lies in ``source``: (offset, length) in bytes.

    Raises ``MotionPhotoError`` when the XMP announces none, or when the bytes it points at
    are not an MP4 (the file was cut short, or re-saved by an editor that dropped the video).
    """
    source.seek(0)
    try:
        with Image.open(source) as image:
            xmp = image.info.get("xmp") or b""
    except Exception as exc:
        raise MotionPhotoError(f"the motion photo's still cannot be read ({exc})") from None
    length = motion_photo_length(xmp)
    if length is None:
        raise MotionPhotoError("the photo's XMP announces no embedded video")
    size = source.seek(0, 2)
    offset = size - length
    if offset <= 0:
        raise MotionPhotoError(
            f"the embedded video is missing: the XMP gives {length} bytes, the file has {size}"
        )
    source.seek(offset)
    head = source.read(12)
    source.seek(0)
    if len(head) < 12 or head[4:8] != b"ftyp":
        raise MotionPhotoError(
            "the embedded video is missing or damaged (no MP4 where the XMP says it starts)"
        )
    return offset, length
