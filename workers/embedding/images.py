"""Image decoding for the pipeline: one allowlist of formats, one error type with a reason.

Plain Python, Pillow, LibRaw (camera RAW, in ``raw.py``) and (for resizing) torchvision, no
Django. Every failure a user's file can cause surfaces as ``ImageDecodeError`` whose message is
fit to show that user.
"""

from __future__ import annotations

import io
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta, timezone
from struct import error as struct_error
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from workers.embedding.raw import RawDecodeError, decode_raw, raw_format, raw_size

# HEIC/HEIF photos from phones; AVIF is built into Pillow.
pillow_heif.register_heif_opener()

DEFAULT_MAX_PIXELS = 100_000_000


@dataclass(frozen=True)
class ImageFormat:
    """A format uploads are accepted in, and how a file in it is served and named."""

    name: str  # Pillow's name: what ``identify_format`` returns and a photo stores
    label: str  # what people call it, in messages
    mime_type: str
    extension: str  # with its dot; downloads are named by the format sniffed, not the upload


# The allowlist. Formats are recognised from content, never from a file name or a Content-Type
# header, and only these decoders are ever run.
IMAGE_FORMATS: tuple[ImageFormat, ...] = (
    ImageFormat("JPEG", "JPEG", "image/jpeg", ".jpg"),
    # A JPEG that carries more pictures (previews, stereo pairs, phones' HDR gain maps): Pillow's
    # JPEG opener names it MPO. It is a JPEG to everyone else.
    ImageFormat("MPO", "JPEG", "image/jpeg", ".jpg"),
    ImageFormat("PNG", "PNG", "image/png", ".png"),
    ImageFormat("WEBP", "WebP", "image/webp", ".webp"),
    ImageFormat("GIF", "GIF", "image/gif", ".gif"),
    ImageFormat("TIFF", "TIFF", "image/tiff", ".tiff"),
    ImageFormat("BMP", "BMP", "image/bmp", ".bmp"),
    ImageFormat("HEIF", "HEIC/HEIF", "image/heic", ".heic"),
    ImageFormat("AVIF", "AVIF", "image/avif", ".avif"),
    ImageFormat("JPEG2000", "JPEG 2000", "image/jp2", ".jp2"),
    # PBM, PGM and PPM, binary or plain (P1-P6); see _open for the rest of Pillow's "PPM".
    ImageFormat("PPM", "Netpbm PNM/PBM/PGM/PPM", "image/x-portable-anymap", ".pnm"),
    # Camera RAW, decoded by LibRaw (raw.py), never by Pillow: Pillow would open most of these
    # as a TIFF of their tiny thumbnail.
    ImageFormat("DNG", "DNG", "image/x-adobe-dng", ".dng"),
    ImageFormat("CR2", "Canon CR2", "image/x-canon-cr2", ".cr2"),
    ImageFormat("CR3", "Canon CR3", "image/x-canon-cr3", ".cr3"),
    ImageFormat("NEF", "Nikon NEF", "image/x-nikon-nef", ".nef"),
    ImageFormat("ARW", "Sony ARW", "image/x-sony-arw", ".arw"),
    ImageFormat("RAF", "Fujifilm RAF", "image/x-fuji-raf", ".raf"),
    ImageFormat("ORF", "Olympus ORF", "image/x-olympus-orf", ".orf"),
    ImageFormat("RW2", "Panasonic RW2", "image/x-panasonic-rw2", ".rw2"),
)
RAW_FORMATS = ("DNG", "CR2", "CR3", "NEF", "ARW", "RAF", "ORF", "RW2")
ALLOWED_FORMATS = tuple(entry.name for entry in IMAGE_FORMATS)
# What a refusal lists, each name once.
ACCEPTED_FORMATS_TEXT = ", ".join(dict.fromkeys(entry.label for entry in IMAGE_FORMATS))
_NOT_SUPPORTED = f"not a supported image (accepted: {ACCEPTED_FORMATS_TEXT})"
# MPO has no opener of its own: the JPEG one returns it. RAW is LibRaw's.
_OPENERS = tuple(name for name in ALLOWED_FORMATS if name != "MPO" and name not in RAW_FORMATS)
_BY_NAME = {entry.name: entry for entry in IMAGE_FORMATS}


def format_info(image_format: str) -> ImageFormat | None:
    """The allowlist's entry for ``image_format`` (a name ``identify_format`` returned), or
    ``None`` for a name outside it (serve such a file as ``application/octet-stream``)."""
    return _BY_NAME.get(image_format)


class ImageDecodeError(ValueError):
    """The file is not an image we accept, or it is damaged. ``str(error)`` is the reason."""


# Pillow's built-in decompression-bomb guard (a fixed ~89 M pixels) would override the
# configurable MEDIASEARCH_MAX_IMAGE_PIXELS; every open in this module is followed by
# _check_size with the caller's limit, before a single pixel is decoded.
Image.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class PhotoMetadata:
    """What the file says about itself; every field may be unknown."""

    taken_at: datetime | None = None  # aware; UTC when the file gave no time zone
    taken_at_offset_minutes: int | None = None  # the zone the photo was taken in, if known
    camera_make: str = ""
    camera_model: str = ""
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class DecodedPhoto:
    image: Image.Image  # upright RGB; smaller than the file when decoded with ``min_side``
    metadata: PhotoMetadata
    format: str
    width: int  # of the upright original, whatever size ``image`` was decoded at
    height: int


@dataclass(frozen=True)
class PreparedPhoto:
    """A photo decoded once, with its JPEG renditions and the picture the model should see."""

    decoded: DecodedPhoto
    renditions: tuple[bytes, ...]  # JPEGs, in the order of the sides asked for
    model_image: Image.Image


def identify_format(source: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Read only the header of ``source``; return the Pillow format name (``"JPEG"``, ...).

    Cheap enough for the web request that accepts an upload. Raises ``ImageDecodeError``.
    """
    position = source.tell()
    try:
        kind = _raw_format(source)
        if kind is not None:
            try:
                width, height = raw_size(source)
            except RawDecodeError as exc:
                raise ImageDecodeError(str(exc)) from None
            _check_pixels(width, height, max_pixels)
            return kind
        with _open(source) as image:
            _check_size(image, max_pixels)
            return str(image.format)
    finally:
        source.seek(position)


def _raw_format(source: BinaryIO) -> str | None:
    try:
        return raw_format(source)
    except RawDecodeError as exc:
        raise ImageDecodeError(f"{exc} (accepted: {ACCEPTED_FORMATS_TEXT})") from None


def decode_image(source: bytes | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode an upload into an upright RGB image.

    EXIF orientation is applied; transparency is flattened onto white; animations give their
    first frame. Raises ``ImageDecodeError`` for anything that is not a whole, allowed image.
    """
    return decode_photo(source, max_pixels=max_pixels).image


def decode_photo(
    source: bytes | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS, min_side: int = 0
) -> DecodedPhoto:
    """Decode an upload once into an upright RGB image plus the metadata it carries.

    With ``min_side``, a JPEG is decoded at a reduced scale (1/2, 1/4 or 1/8, done by the JPEG
    decoder itself, several times faster than a full decode) that keeps its longer side at
    least ``min_side`` pixels; ``width`` and ``height`` are still the original's.
    Raises ``ImageDecodeError`` like ``decode_image``; damaged metadata is ignored, never fatal.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    kind = _raw_format(source)
    if kind is not None:
        return _decode_raw(source, kind, max_pixels=max_pixels, min_side=min_side)
    with _open(source) as image:
        _check_size(image, max_pixels)
        try:
            full_size = image.size
            if min_side and image.format == "JPEG":
                image.draft(None, _draft_size(full_size, min_side))
            image.load()
            metadata = read_metadata(image)
            upright = _exif_transpose(image)
            width, height = full_size
            if upright.size != image.size:
                width, height = height, width  # turned a quarter by its EXIF orientation
            return DecodedPhoto(
                image=_to_rgb(upright),
                metadata=metadata,
                format=str(image.format),
                width=width,
                height=height,
            )
        # The HEIF and AVIF decoders (C libraries) raise RuntimeError and EOFError for damaged
        # data; found by tests/workers/embedding/test_decode_fuzz.py.
        except (
            OSError,
            SyntaxError,
            ValueError,
            RuntimeError,
            EOFError,
            Image.DecompressionBombError,
        ) as exc:
            raise ImageDecodeError(f"the image data is damaged or incomplete ({exc})") from exc


def _decode_raw(source: BinaryIO, kind: str, *, max_pixels: int, min_side: int) -> DecodedPhoto:
    try:
        picture = decode_raw(source, min_side=min_side, max_pixels=max_pixels)
    except RawDecodeError as exc:
        raise ImageDecodeError(str(exc)) from exc
    metadata = _merged(*(_metadata_from_exif(exif) for exif in picture.exif))
    if metadata.taken_at is None and picture.timestamp is not None:
        # LibRaw's own date (CR3 keeps it outside any EXIF we read): local time, zone unknown.
        taken_at, _ = _taken_at(f"{picture.timestamp:%Y:%m:%d %H:%M:%S}", None)
        metadata = _merged(metadata, PhotoMetadata(taken_at=taken_at))
    return DecodedPhoto(
        image=picture.image,
        metadata=metadata,
        format=kind,
        width=picture.width,
        height=picture.height,
    )


def _merged(*candidates: PhotoMetadata) -> PhotoMetadata:
    """Each field from the first candidate that knows it (the date and its zone together)."""
    merged = PhotoMetadata()
    for candidate in candidates:
        if merged.taken_at is None and candidate.taken_at is not None:
            merged = replace(
                merged,
                taken_at=candidate.taken_at,
                taken_at_offset_minutes=candidate.taken_at_offset_minutes,
            )
        if not merged.camera_make and not merged.camera_model:
            merged = replace(
                merged, camera_make=candidate.camera_make, camera_model=candidate.camera_model
            )
        if merged.latitude is None and candidate.latitude is not None:
            merged = replace(merged, latitude=candidate.latitude, longitude=candidate.longitude)
    return merged


def _draft_size(size: tuple[int, int], min_side: int) -> tuple[int, int]:
    """The size to ask ``draft()`` for: the decoder never goes below it in either direction."""
    width, height = size
    scale = min(1.0, min_side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def prepare_photo(
    source: bytes | BinaryIO,
    *,
    sides: Sequence[int],
    model_side: int,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> PreparedPhoto:
    """Decode ``source`` once, at the smallest scale the largest of ``sides`` allows.

    Each rendition (a JPEG no larger than its side) is resized from the next larger one, not
    from the original, and the model gets the smallest picture whose shorter side is still at
    least ``model_side`` (twice the model's input is plenty: its own resize does the rest).
    Embeddings stay within cosine 0.99997 of a full decode (0.99999 for the demo model;
    tests/workers/embedding/test_fidelity.py).
    Raises ``ImageDecodeError``. Thread-safe: Pillow (decoding, encoding) and torchvision
    (resizing) release the GIL, so a pool of threads uses every core.
    """
    decoded = decode_photo(source, max_pixels=max_pixels, min_side=max([*sides, model_side]))
    current = decoded.image
    model_image = current
    renditions: dict[int, bytes] = {}
    for side in sorted(set(sides), reverse=True):
        current = _reduced(current, side)
        renditions[side] = _jpeg(current)
        if min(current.size) >= model_side:
            model_image = current
    return PreparedPhoto(
        decoded=decoded,
        renditions=tuple(renditions[side] for side in sides),
        model_image=model_image,
    )


def _exif_transpose(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image) or image
    except (KeyError, TypeError, ValueError, SyntaxError, struct_error):
        # A broken orientation tag: keep the pixels as stored rather than lose the photo.
        return image


def read_metadata(image: Image.Image) -> PhotoMetadata:
    """Date taken, camera and position from EXIF; anything unreadable is left unknown."""
    try:
        exif = image.getexif()
    except Exception:  # corrupt EXIF comes in every shape; metadata is never worth a failure
        return PhotoMetadata()
    return _metadata_from_exif(exif)


def _metadata_from_exif(exif: Image.Exif) -> PhotoMetadata:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow warns about the corrupt EXIF we tolerate
            details = exif.get_ifd(ExifTags.IFD.Exif)
            gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # corrupt EXIF comes in every shape; metadata is never worth a failure
        return PhotoMetadata()
    taken_at, offset = _taken_at(
        details.get(ExifTags.Base.DateTimeOriginal) or exif.get(ExifTags.Base.DateTime),
        details.get(ExifTags.Base.OffsetTimeOriginal),
    )
    latitude, longitude = _position(gps)
    return PhotoMetadata(
        taken_at=taken_at,
        taken_at_offset_minutes=offset,
        camera_make=_text(exif.get(ExifTags.Base.Make)),
        camera_model=_text(exif.get(ExifTags.Base.Model)),
        latitude=latitude,
        longitude=longitude,
    )


def _text(value: object) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    if not isinstance(value, str):
        return ""
    return "".join(ch for ch in value if ch.isprintable()).strip()[:100]


def _taken_at(value: object, offset: object) -> tuple[datetime | None, int | None]:
    text = _text(value)
    try:
        local = datetime.strptime(text[:19], "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return None, None
    minutes = _offset_minutes(_text(offset))
    zone = timezone(timedelta(minutes=minutes)) if minutes is not None else UTC
    return local.replace(tzinfo=zone), minutes


def _offset_minutes(text: str) -> int | None:
    # EXIF writes offsets as "+02:00" / "-05:30".
    if len(text) != 6 or text[0] not in "+-" or text[3] != ":":
        return None
    try:
        minutes = int(text[1:3]) * 60 + int(text[4:6])
    except ValueError:
        return None
    return minutes if text[0] == "+" else -minutes


def _position(gps: dict) -> tuple[float | None, float | None]:
    try:
        latitude = _degrees(gps[2], gps.get(1))
        longitude = _degrees(gps[4], gps.get(3))
    except (KeyError, TypeError, ValueError, ZeroDivisionError, IndexError):
        return None, None
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        return None, None
    return round(latitude, 7), round(longitude, 7)


def _degrees(dms, ref) -> float:
    degrees, minutes, seconds = (float(part) for part in dms)
    value = degrees + minutes / 60 + seconds / 3600
    return -value if _text(ref).upper() in ("S", "W") else value


def _open(source: BinaryIO) -> Image.Image:
    """Open lazily (header only); every caller then applies its own pixel limit (_check_size)."""
    if source.seek(0, io.SEEK_END) == 0:
        raise ImageDecodeError("the file is empty")
    source.seek(0)
    try:
        image = Image.open(source, formats=_OPENERS)
    except UnidentifiedImageError:
        raise ImageDecodeError(_NOT_SUPPORTED) from None
    except (OSError, SyntaxError, ValueError, RuntimeError, EOFError) as exc:
        raise ImageDecodeError(f"the image header is damaged ({exc})") from exc
    if image.format == "PPM" and not image.custom_mimetype:
        # Pillow's PPM opener also reads PFM (floats, which would decode black) and formats of
        # Pillow's own ("Py…", "P0CMYK"); only Netpbm's P1-P6 get a MIME type of their own.
        image.close()
        raise ImageDecodeError(_NOT_SUPPORTED)
    return image


def _check_size(image: Image.Image, max_pixels: int) -> None:
    _check_pixels(*image.size, max_pixels)


def _check_pixels(width: int, height: int, max_pixels: int) -> None:
    if width <= 0 or height <= 0:
        raise ImageDecodeError("the image has no pixels")
    if width * height > max_pixels:
        raise ImageDecodeError(
            f"the image is {width}x{height} pixels, more than the limit of {max_pixels:,}"
        )


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    has_alpha = image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale to 8 bits instead of clipping everything to white.
        return image.point(lambda value: value / 256).convert("L").convert("RGB")
    return image.convert("RGB")


def make_thumbnail(image: Image.Image, *, max_side: int, quality: int = 82) -> bytes:
    """Return a JPEG no larger than ``max_side`` on its longest side."""
    return _jpeg(_reduced(image, max_side), quality=quality)


def _reduced(image: Image.Image, max_side: int) -> Image.Image:
    """``image`` shrunk to fit ``max_side``, aspect kept, as RGB; a copy if it already fits.

    torchvision's antialiased bicubic resize of 8-bit pixels, vectorised: 5x faster than
    Pillow's Lanczos here (a 2016 px photo to 1600 px: 14 against 68 ms), within 0.4 of 255 per
    pixel on average. It releases the GIL like Pillow, so the decode pool keeps both cores.
    """
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image.copy()
    size = [max(1, round(height * scale)), max(1, round(width * scale))]
    # Imported here: this module is imported by web processes that never resize.
    import torch
    from torchvision.transforms.v2 import InterpolationMode, functional

    rgb = image if image.mode == "RGB" else image.convert("RGB")
    pixels = torch.from_numpy(np.array(rgb)).permute(2, 0, 1)
    resized = functional.resize(pixels, size, InterpolationMode.BICUBIC, antialias=True)
    return Image.fromarray(resized.permute(1, 2, 0).contiguous().numpy())


def _jpeg(image: Image.Image, *, quality: int = 82) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()
