"""Image decoding for the pipeline: one allowlist of formats, one error type with a reason.

Plain Python and Pillow, no Django. Every failure a user's file can cause surfaces as
``ImageDecodeError`` whose message is fit to show that user.
"""

from __future__ import annotations

import io
import warnings
from typing import BinaryIO

from PIL import Image, ImageOps, UnidentifiedImageError

# Formats are recognised from content, never from a file name or a Content-Type header.
ALLOWED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "TIFF", "BMP")
DEFAULT_MAX_PIXELS = 100_000_000


class ImageDecodeError(ValueError):
    """The file is not an image we accept, or it is damaged. ``str(error)`` is the reason."""


def identify_format(source: BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> str:
    """Read only the header of ``source``; return the Pillow format name (``"JPEG"``, ...).

    Cheap enough for the web request that accepts an upload. Raises ``ImageDecodeError``.
    """
    position = source.tell()
    try:
        with _open(source) as image:
            _check_size(image, max_pixels)
            return str(image.format)
    finally:
        source.seek(position)


def decode_image(source: bytes | BinaryIO, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> Image.Image:
    """Fully decode an upload into an upright RGB image.

    EXIF orientation is applied; transparency is flattened onto white; animations give their
    first frame. Raises ``ImageDecodeError`` for anything that is not a whole, allowed image.
    """
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    with _open(source) as image:
        _check_size(image, max_pixels)
        try:
            image.load()
            upright = ImageOps.exif_transpose(image) or image
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
            raise ImageDecodeError(f"the image data is damaged or incomplete ({exc})") from exc
        return _to_rgb(upright)


def _open(source: BinaryIO) -> Image.Image:
    if source.seek(0, io.SEEK_END) == 0:
        raise ImageDecodeError("the file is empty")
    source.seek(0)
    try:
        with warnings.catch_warnings():
            # A decompression-bomb warning is an error for us: the size check says why.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(source, formats=ALLOWED_FORMATS)
    except UnidentifiedImageError:
        raise ImageDecodeError(
            "not a supported image (accepted: " + ", ".join(ALLOWED_FORMATS) + ")"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageDecodeError(f"the image is too large to decode safely ({exc})") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(f"the image header is damaged ({exc})") from exc


def _check_size(image: Image.Image, max_pixels: int) -> None:
    width, height = image.size
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
    thumbnail = image.copy()
    thumbnail.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    buffer = io.BytesIO()
    thumbnail.save(buffer, format="JPEG", quality=quality, optimize=True, progressive=True)
    return buffer.getvalue()
