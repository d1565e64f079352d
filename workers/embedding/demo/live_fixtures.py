"""Generated Live Photos and motion photos for the tests and the demo gallery.

Third-party media is never committed: an Apple Live Photo is made here as a JPEG or HEIC still
whose EXIF carries an Apple MakerNote with the content identifier (tag 0x0011), and a MOV with
the same identifier in ``com.apple.quicktime.content.identifier`` (H.264, or HEVC as iPhones
record it); an Android motion photo as a JPEG with ``GCamera`` XMP and an MP4 appended.
Plain Python + Pillow + PyAV; no Django.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Sequence
from datetime import datetime
from typing import Literal

from PIL import ExifTags, Image

from workers.embedding.demo.scenes import Scene, render
from workers.embedding.demo.videos import Codec, render_video
from workers.embedding.live import APPLE_MAKERNOTE_PREFIX

XmpStyle = Literal["container", "microvideo"]


def apple_maker_note(content_identifier: str) -> bytes:
    """An Apple MakerNote ("Apple iOS", version 1, big-endian) holding only tag 0x0011, the
    content identifier, as an ASCII value stored after the IFD (offsets count from the start
    of the MakerNote, as Apple's do)."""
    value = content_identifier.encode("ascii") + b"\x00"
    header = APPLE_MAKERNOTE_PREFIX + b"\x00\x01" + b"MM"
    ifd_end = len(header) + 2 + 12 + 4
    entry = struct.pack(">HHII", 0x0011, 2, len(value), ifd_end)
    return header + struct.pack(">H", 1) + entry + struct.pack(">I", 0) + value


def live_still_bytes(
    scene: Scene,
    *,
    content_identifier: str,
    image_format: Literal["JPEG", "HEIF"] = "JPEG",
    size: tuple[int, int] = (320, 240),
    taken_at: datetime | None = None,
) -> bytes:
    """The still of a Live Photo: ``scene`` as a JPEG or HEIC with Make "Apple", an iPhone
    model, DateTimeOriginal (if given) and the MakerNote carrying ``content_identifier``."""
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Apple"
    exif[ExifTags.Base.Model] = "iPhone 15"
    details = exif.get_ifd(ExifTags.IFD.Exif)
    details[ExifTags.Base.MakerNote] = apple_maker_note(content_identifier)
    if taken_at is not None:
        details[ExifTags.Base.DateTimeOriginal] = taken_at.strftime("%Y:%m:%d %H:%M:%S")
    out = io.BytesIO()
    picture = render(scene, size)
    if image_format == "HEIF":
        picture.save(out, "HEIF", exif=exif.tobytes(), quality=80)
    else:
        picture.save(out, "JPEG", exif=exif, quality=90)
    return out.getvalue()


def live_motion_bytes(
    scenes: Sequence[tuple[float, Scene]],
    *,
    content_identifier: str,
    codec: Codec = "hevc",
    size: tuple[int, int] = (320, 240),
    fps: int = 10,
) -> bytes:
    """The motion of a Live Photo: a MOV of ``scenes`` carrying ``content_identifier``."""
    out = io.BytesIO()
    render_video(
        out,
        scenes,
        size=size,
        fps=fps,
        codec=codec,
        container="mov",
        metadata={
            "com.apple.quicktime.content.identifier": content_identifier,
            "com.apple.quicktime.make": "Apple",
            "com.apple.quicktime.model": "iPhone 15",
        },
    )
    return out.getvalue()


def motion_photo_xmp(video_length: int, *, style: XmpStyle = "container") -> bytes:
    """The XMP of an Android motion photo whose MP4 is the last ``video_length`` bytes:
    Google's current ``Container:Directory`` form, or the older ``MicroVideo`` one."""
    if style == "microvideo":
        description = (
            '<rdf:Description rdf:about="" xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"'
            f' GCamera:MicroVideo="1" GCamera:MicroVideoVersion="1"'
            f' GCamera:MicroVideoOffset="{video_length}"'
            ' GCamera:MicroVideoPresentationTimestampUs="500000"/>'
        )
    else:
        description = (
            '<rdf:Description rdf:about=""'
            ' xmlns:GCamera="http://ns.google.com/photos/1.0/camera/"'
            ' xmlns:Container="http://ns.google.com/photos/1.0/container/"'
            ' xmlns:Item="http://ns.google.com/photos/1.0/container/item/"'
            ' GCamera:MotionPhoto="1" GCamera:MotionPhotoVersion="1"'
            ' GCamera:MotionPhotoPresentationTimestampUs="500000">'
            "<Container:Directory><rdf:Seq>"
            '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="image/jpeg"'
            ' Item:Semantic="Primary" Item:Length="0" Item:Padding="0"/></rdf:li>'
            '<rdf:li rdf:parseType="Resource"><Container:Item Item:Mime="video/mp4"'
            f' Item:Semantic="MotionPhoto" Item:Length="{video_length}" Item:Padding="0"/>'
            "</rdf:li></rdf:Seq></Container:Directory></rdf:Description>"
        )
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF'
        ' xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        f"{description}</rdf:RDF></x:xmpmeta>"
    ).encode()


def motion_photo_bytes(
    scene: Scene,
    scenes: Sequence[tuple[float, Scene]],
    *,
    style: XmpStyle = "container",
    size: tuple[int, int] = (320, 240),
    codec: Codec = "h264",
) -> bytes:
    """An Android motion photo: ``scene`` as a JPEG whose XMP announces the MP4 of ``scenes``
    appended after it, as Pixel and recent Samsung phones write them."""
    video = io.BytesIO()
    render_video(video, scenes, size=size, fps=10, codec=codec, container="mp4")
    clip = video.getvalue()
    still = io.BytesIO()
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "Google"
    exif[ExifTags.Base.Model] = "Pixel 8"
    render(scene, size).save(
        still, "JPEG", quality=90, exif=exif, xmp=motion_photo_xmp(len(clip), style=style)
    )
    return still.getvalue() + clip
