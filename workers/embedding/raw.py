"""Camera RAW files: recognised from their bytes, decoded with LibRaw (``rawpy``).

Plain Python, no Django; ``images.py`` is the only caller and turns ``RawDecodeError`` into its
``ImageDecodeError``. See docs/RAW.md for what is supported and how it was tested.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from struct import error as struct_error
from typing import BinaryIO

import numpy as np
import rawpy
from PIL import Image, ImageOps, TiffImagePlugin

# Maker names (the TIFF Make tag, upper-cased) of the TIFF-based RAWs told apart by maker.
_CFA_MAKERS = {"NIKON": "NEF", "SONY": "ARW"}
_PHOTOMETRIC_RAW = (32803, 34892)  # CFA (a Bayer mosaic), LinearRaw (demosaiced sensor data)
_DNG_VERSION = 0xC612
_SUB_IFDS = 0x14A
_MAX_IFDS = 32  # real files have a handful; a loop of IFDs in a hostile file ends here
# LibRaw's ``sizes.flip`` as the EXIF orientation it was read from (LibRaw maps EXIF 1-8 to
# flip with "50132467"[orientation % 8]).
_FLIP_TO_ORIENTATION = {0: 1, 1: 2, 3: 3, 2: 4, 4: 5, 6: 6, 7: 7, 5: 8}
_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


class RawDecodeError(ValueError):
    """A RAW file LibRaw cannot read; ``str(error)`` is the reason, fit to show the user."""


@dataclass(frozen=True)
class RawPicture:
    image: Image.Image  # upright RGB, from the embedded preview or a demosaic
    width: int  # of the upright, fully developed RAW
    height: int
    exif: tuple[Image.Exif, ...]  # where the metadata is, best first: the RAW's own, the preview's
    timestamp: object  # LibRaw's date taken (a naive datetime) when no EXIF gave one
    from_preview: bool


def raw_format(source: BinaryIO) -> str | None:
    """The RAW format ``source`` holds (``"DNG"``, ``"CR2"``, ...), from its content, or ``None``
    for anything else (an ordinary TIFF among them). Reads a few IFDs and rewinds.

    Raises ``RawDecodeError`` for a TIFF-based RAW of a maker outside the allowlist (Pentax,
    Samsung, ...), which Pillow would otherwise take for a TIFF of its tiny thumbnail.
    """
    position = source.tell()
    try:
        source.seek(0)
        head = source.read(16)
        if head.startswith(b"FUJIFILMCCD-RAW"):
            return "RAF"
        if head[4:12] == b"ftypcrx ":
            return "CR3"
        if head[:4] in (b"IIRO", b"IIRS", b"MMOR"):
            return "ORF"
        if head[:4] == b"IIU\x00":
            return "RW2"
        if head[:4] not in (b"II*\x00", b"MM\x00*"):
            return None
        if head[8:10] == b"CR":
            return "CR2"
        return _tiff_raw_format(source, head)
    finally:
        source.seek(position)


def _tiff_raw_format(source: BinaryIO, head: bytes) -> str | None:
    make = ""
    is_raw = False
    for number, ifd in enumerate(_ifds(source, head)):
        if number == 0 and _DNG_VERSION in ifd:
            return "DNG"
        make = make or str(ifd.get(0x10F) or "").strip("\x00 ").upper()
        photometric = ifd.get(0x106)
        is_raw = is_raw or photometric in _PHOTOMETRIC_RAW
    if not is_raw:
        return None
    for maker, kind in _CFA_MAKERS.items():
        if make.startswith(maker):
            return kind
    raise RawDecodeError(
        f"a camera RAW file from {make.title() or 'an unknown maker'} in a format not accepted"
    )


def _ifds(source: BinaryIO, head: bytes):
    """IFD0, its chain and its SubIFDs, as Pillow reads them; stops quietly at damage."""
    prefix = head[:4]
    pending = [int.from_bytes(head[4:8], "little" if prefix[:2] == b"II" else "big")]
    seen: set[int] = set()
    while pending and len(seen) < _MAX_IFDS:
        offset = pending.pop(0)
        if offset < 8 or offset in seen:
            continue
        seen.add(offset)
        ifd = TiffImagePlugin.ImageFileDirectory_v2(prefix + b"\x08\x00\x00\x00")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # Pillow warns about the damage we tolerate
                source.seek(offset)
                ifd.load(source)
        except (OSError, SyntaxError, ValueError, KeyError, TypeError, struct_error):
            return
        yield ifd
        children = ifd.get(_SUB_IFDS) or ()
        pending.extend(children if isinstance(children, tuple) else (children,))
        pending.append(ifd.next)


def raw_size(source: BinaryIO) -> tuple[int, int]:
    """Width and height of the upright, developed RAW in ``source``; LibRaw reads only the
    metadata. Raises ``RawDecodeError``."""
    position = source.tell()
    try:
        source.seek(0)
        data = source.read()
    finally:
        source.seek(position)
    with _opened(data) as raw:
        return _upright_size(raw)


def decode_raw(source: BinaryIO, *, min_side: int = 0, max_pixels: int) -> RawPicture:
    """Decode the RAW in ``source`` to an upright RGB picture.

    The embedded JPEG (or bitmap) preview is used when its longer side reaches ``min_side``
    (or, with no ``min_side``, the RAW's full size): no demosaic at all. Otherwise LibRaw
    demosaics with the camera's white balance, at half size when that still reaches
    ``min_side``. Raises ``RawDecodeError``.
    """
    source.seek(0)
    data = source.read()
    with _opened(data) as raw:
        width, height = _upright_size(raw)
        if width * height > max_pixels:
            raise RawDecodeError(
                f"the image is {width}x{height} pixels, more than the limit of {max_pixels:,}"
            )
        target = min(min_side, max(width, height)) if min_side else max(width, height)
        exif = [_tiff_exif(data)]
        timestamp = raw.other.timestamp
        preview = _preview(raw, target, max_pixels)
        if preview is not None:
            image, preview_exif = preview
            return RawPicture(
                image=image,
                width=width,
                height=height,
                exif=_present(*exif, preview_exif),
                timestamp=timestamp,
                from_preview=True,
            )
        half = max(width, height) // 2 >= target
        try:
            pixels = raw.postprocess(use_camera_wb=True, half_size=half, output_bps=8)
        except rawpy.LibRawError as exc:
            raise _error(exc) from exc
        return RawPicture(
            image=Image.fromarray(np.ascontiguousarray(pixels)),
            width=width,
            height=height,
            exif=_present(*exif, _preview_exif(raw)),
            timestamp=timestamp,
            from_preview=False,
        )


class _opened:
    """``rawpy.imread`` on bytes, with LibRaw's errors as ``RawDecodeError``."""

    def __init__(self, data: bytes):
        self.data = data
        self.raw: rawpy.RawPy | None = None

    def __enter__(self) -> rawpy.RawPy:
        raw = rawpy.RawPy()
        try:
            raw.open_buffer(io.BytesIO(self.data))
        except rawpy.LibRawError as exc:
            raw.close()
            raise _error(exc) from exc
        self.raw = raw
        return raw

    def __exit__(self, *exc_info: object) -> None:
        if self.raw is not None:
            self.raw.close()


def _error(exc: Exception) -> RawDecodeError:
    detail = (
        exc.args[0].decode("utf-8", "replace")
        if exc.args and isinstance(exc.args[0], bytes)
        else str(exc)
    )
    if isinstance(exc, rawpy.LibRawFileUnsupportedError):
        return RawDecodeError(
            f"the RAW file is damaged, or its camera is not supported by LibRaw ({detail})"
        )
    if isinstance(exc, (rawpy.LibRawTooBigError, rawpy.LibRawUnsufficientMemoryError)):
        return RawDecodeError(f"the RAW image is too large to decode ({detail})")
    return RawDecodeError(f"the RAW data is damaged or incomplete ({detail})")


def _upright_size(raw: rawpy.RawPy) -> tuple[int, int]:
    sizes = raw.sizes
    width, height = int(sizes.width), int(sizes.height)
    if width <= 0 or height <= 0:
        raise RawDecodeError("the RAW image has no pixels")
    return (height, width) if int(sizes.flip) & 4 else (width, height)


def _orientation(raw: rawpy.RawPy) -> int:
    return _FLIP_TO_ORIENTATION.get(int(raw.sizes.flip), 1)


def _preview(
    raw: rawpy.RawPy, target: int, max_pixels: int
) -> tuple[Image.Image, Image.Exif | None] | None:
    """The embedded preview, upright, if it is large enough; ``None`` sends the caller to a
    demosaic (no preview, too small, or one that will not decode)."""
    try:
        thumb = raw.extract_thumb()
    except rawpy.LibRawError:
        return None
    try:
        if thumb.format == rawpy.ThumbFormat.JPEG and isinstance(thumb.data, bytes):
            image = Image.open(io.BytesIO(thumb.data), formats=("JPEG",))
            width, height = image.size
            if max(width, height) < target or width * height > max_pixels:
                return None
            image.draft("RGB", _draft_size(image.size, target))
            image.load()
            exif = image.getexif()
            if exif.get(0x0112, 1) not in (1, None):
                upright = ImageOps.exif_transpose(image) or image
            else:
                upright = _turn(image, _orientation(raw))
            return upright.convert("RGB"), exif
        if thumb.format == rawpy.ThumbFormat.BITMAP and isinstance(thumb.data, np.ndarray):
            if max(thumb.data.shape[:2]) < target:
                return None
            bitmap = Image.fromarray(np.ascontiguousarray(thumb.data)).convert("RGB")
            return _turn(bitmap, _orientation(raw)), None
    except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError):
        return None
    return None


def _draft_size(size: tuple[int, int], target: int) -> tuple[int, int]:
    width, height = size
    scale = min(1.0, target / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _turn(image: Image.Image, orientation: int) -> Image.Image:
    method = _TRANSPOSE.get(orientation)
    return image.transpose(method) if method is not None else image


def _preview_exif(raw: rawpy.RawPy) -> Image.Exif | None:
    """The EXIF of the embedded JPEG preview (RAF and some CR3 keep the date and camera only
    there); ``None`` without one."""
    try:
        thumb = raw.extract_thumb()
        if thumb.format != rawpy.ThumbFormat.JPEG or not isinstance(thumb.data, bytes):
            return None
        with Image.open(io.BytesIO(thumb.data), formats=("JPEG",)) as image:
            return image.getexif()
    except (rawpy.LibRawError, OSError, SyntaxError, ValueError, EOFError):
        return None


def _tiff_exif(data: bytes) -> Image.Exif | None:
    """IFD0 of a TIFF-based RAW as EXIF (ORF and RW2 have a TIFF inside another magic number)."""
    if data[:4] in (b"IIRO", b"IIRS", b"IIU\x00"):
        data = b"II*\x00" + data[4:]
    elif data[:4] == b"MMOR":
        data = b"MM\x00*" + data[4:]
    elif data[:4] not in (b"II*\x00", b"MM\x00*"):
        return None
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            exif.load(data)
    except Exception:  # corrupt EXIF comes in every shape; metadata is never worth a failure
        return None
    return exif


def _present(*exifs: Image.Exif | None) -> tuple[Image.Exif, ...]:
    return tuple(exif for exif in exifs if exif is not None)
