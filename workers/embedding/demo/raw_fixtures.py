"""Minimal camera RAW files, made here from a picture: the RAW tests' fixtures.

We may not commit files from real cameras, so tests build their own DNG: a Bayer (RGGB) mosaic
of a picture, 16-bit, uncompressed, with the tags LibRaw needs (DNG 1.4, "Digital Negative
Specification", Adobe) and the EXIF a camera writes. The layout is the one Adobe's converter
uses: IFD0 is a small RGB thumbnail (which is why Pillow alone opens a DNG as a TIFF), its
SubIFDs hold the raw CFA image and, optionally, a JPEG preview.

The "camera" sees in linear sRGB: ColorMatrix1 is the XYZ (D65) to linear-sRGB matrix and the
white balance is neutral, so LibRaw's development gives back the picture's colours.

Only DNG can be made: CR2/CR3, NEF, ARW, RAF, ORF and RW2 hold the raw data in each maker's own
compressed encodings, for which no encoder is at hand. ``synthetic_header`` gives the first
bytes of those formats, enough for sniffing tests and no more.

Run ``python -m workers.embedding.demo.raw_fixtures OUT_DIR`` to write two sample DNGs.
"""

from __future__ import annotations

import io
import struct
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import numpy as np
from PIL import Image

BLACK_LEVEL = 256
WHITE_LEVEL = 16383  # 14-bit data in 16-bit samples, as most cameras store it
# XYZ (D65) -> linear sRGB (IEC 61966-2-1), the "camera" ColorMatrix1.
XYZ_TO_SRGB = (
    (3.2404542, -1.5371385, -0.4985314),
    (-0.9692660, 1.8760108, 0.0415560),
    (0.0556434, -0.2040259, 1.0572252),
)

_BYTE, _ASCII, _SHORT, _LONG, _RATIONAL, _UNDEFINED, _SRATIONAL = 1, 2, 3, 4, 5, 7, 10


@dataclass
class _Ifd:
    entries: dict[int, tuple[int, object]] = field(default_factory=dict)

    def set(self, tag: int, kind: int, value: object) -> None:
        self.entries[tag] = (kind, value)


class _TiffWriter:
    """Little-endian TIFF: data, then the IFDs that point at it; IFD0 in space kept for it."""

    def __init__(self) -> None:
        self.data = bytearray(b"II*\x00\x00\x00\x00\x00")

    def blob(self, payload: bytes) -> int:
        if len(self.data) % 2:
            self.data.append(0)  # values and IFDs start on a word boundary
        offset = len(self.data)
        self.data += payload
        return offset

    def ifd(self, ifd: _Ifd, next_ifd: int = 0) -> int:
        offset = self.blob(b"")
        self.data += self.table(ifd, offset, next_ifd)
        return offset

    @staticmethod
    def table(ifd: _Ifd, base: int, next_ifd: int = 0) -> bytes:
        """``ifd`` laid out at ``base``: its entries, then the values that do not fit in one."""
        size = 2 + 12 * len(ifd.entries) + 4
        entries = []
        values = bytearray()
        for tag in sorted(ifd.entries):
            kind, value = ifd.entries[tag]
            payload, count = _encode(kind, value)
            if len(payload) > 4:
                field_value = struct.pack("<I", base + size + len(values))
                values += payload + b"\x00" * (len(payload) % 2)
            else:
                field_value = payload.ljust(4, b"\x00")
            entries.append(struct.pack("<HHI", tag, kind, count) + field_value)
        head = struct.pack("<H", len(entries)) + b"".join(entries) + struct.pack("<I", next_ifd)
        return head + bytes(values)

    def reserve(self, size: int) -> int:
        return self.blob(b"\x00" * size)

    def finish(self, first_ifd: _Ifd, at: int) -> bytes:
        """Write ``first_ifd`` into the space reserved for it at ``at``: IFD0 comes first, as
        cameras write it, so that a truncated file keeps its DNG tags."""
        table = self.table(first_ifd, at)
        self.data[at : at + len(table)] = table
        self.data[4:8] = struct.pack("<I", at)
        return bytes(self.data)


def _encode(kind: int, value: object) -> tuple[bytes, int]:
    if kind == _ASCII:
        text = str(value).encode("ascii") + b"\x00"
        return text, len(text)
    if kind == _UNDEFINED:
        raw = bytes(value)  # type: ignore[call-overload]
        return raw, len(raw)
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if kind in (_RATIONAL, _SRATIONAL):
        sign = "i" if kind == _SRATIONAL else "I"
        pairs = [(round(float(number) * 1_000_000), 1_000_000) for number in values]
        return b"".join(struct.pack(f"<{sign}{sign}", *pair) for pair in pairs), len(values)
    code = {_BYTE: "B", _SHORT: "H", _LONG: "I"}[kind]
    return struct.pack(f"<{len(values)}{code}", *values), len(values)


def mosaic(picture: Image.Image) -> np.ndarray:
    """``picture`` (sRGB) as RGGB Bayer data of a linear sensor: uint16, black to white level."""
    srgb = np.asarray(picture.convert("RGB"), dtype=np.float64) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    levels = BLACK_LEVEL + linear * (WHITE_LEVEL - BLACK_LEVEL)
    cfa = np.empty(levels.shape[:2], dtype=np.float64)
    cfa[0::2, 0::2] = levels[0::2, 0::2, 0]  # R
    cfa[0::2, 1::2] = levels[0::2, 1::2, 1]  # G
    cfa[1::2, 0::2] = levels[1::2, 0::2, 1]  # G
    cfa[1::2, 1::2] = levels[1::2, 1::2, 2]  # B
    return np.round(cfa).astype("<u2")


def _strip(ifd: _Ifd, writer: _TiffWriter, payload: bytes, rows: int) -> None:
    ifd.set(0x111, _LONG, writer.blob(payload))  # StripOffsets
    ifd.set(0x116, _LONG, rows)  # RowsPerStrip
    ifd.set(0x117, _LONG, len(payload))  # StripByteCounts


def dng_bytes(
    picture: Image.Image,
    *,
    preview: Image.Image | None = None,
    raw_picture: Image.Image | None = None,
    make: str = "MediaSearch",
    model: str = "Demo Camera DNG",
    taken_at: datetime | None = datetime(2024, 5, 17, 14, 30, 5),
    offset: str | None = "+02:00",
    gps: tuple[float, float] | None = None,
    orientation: int = 1,
) -> bytes:
    """A DNG whose raw data is ``picture`` (or ``raw_picture``) mosaiced, with a small RGB
    thumbnail in IFD0 and, when given, ``preview`` as a baseline JPEG in a SubIFD.

    ``raw_picture`` lets a test tell the preview and the demosaiced data apart. Its sides must be
    even (whole RGGB cells).
    """
    sensor = raw_picture if raw_picture is not None else picture
    width, height = sensor.size
    if width % 2 or height % 2:
        raise ValueError("the picture's sides must be even")
    thumbnail = picture.convert("RGB").copy()
    thumbnail.thumbnail((128, 128))
    writer = _TiffWriter()

    def first_ifd(strip: int, sub_ifds: tuple[int, ...], exif: int, gps: int | None) -> _Ifd:
        return _ifd0(thumbnail, make, model, taken_at, orientation, strip, sub_ifds, exif, gps)

    placeholder = first_ifd(0, (0,) * (1 + (preview is not None)), 0, 0 if gps else None)
    ifd0_at = writer.reserve(len(writer.table(placeholder, 0)))
    thumbnail_at = writer.blob(thumbnail.tobytes())

    raw = _Ifd()
    raw.set(0xFE, _LONG, 0)  # NewSubFileType: the main image
    raw.set(0x100, _LONG, width)
    raw.set(0x101, _LONG, height)
    raw.set(0x102, _SHORT, 16)  # BitsPerSample
    raw.set(0x103, _SHORT, 1)  # Compression: none
    raw.set(0x106, _SHORT, 32803)  # PhotometricInterpretation: CFA
    raw.set(0x115, _SHORT, 1)  # SamplesPerPixel
    raw.set(0x11C, _SHORT, 1)  # PlanarConfiguration
    raw.set(0x828D, _SHORT, (2, 2))  # CFARepeatPatternDim
    raw.set(0x828E, _BYTE, (0, 1, 1, 2))  # CFAPattern: RGGB
    raw.set(0xC617, _SHORT, 1)  # CFALayout: rectangular
    raw.set(0xC61A, _LONG, BLACK_LEVEL)  # BlackLevel
    raw.set(0xC61D, _LONG, WHITE_LEVEL)  # WhiteLevel
    _strip(raw, writer, mosaic(sensor).tobytes(), height)

    sub_ifds = [writer.ifd(raw)]
    if preview is not None:
        buffer = io.BytesIO()
        preview.convert("RGB").save(buffer, format="JPEG", quality=92)
        jpeg = _Ifd()
        jpeg.set(0xFE, _LONG, 1)  # a reduced-resolution copy
        jpeg.set(0x100, _LONG, preview.width)
        jpeg.set(0x101, _LONG, preview.height)
        jpeg.set(0x102, _SHORT, (8, 8, 8))
        jpeg.set(0x103, _SHORT, 7)  # JPEG
        jpeg.set(0x106, _SHORT, 6)  # YCbCr
        jpeg.set(0x115, _SHORT, 3)
        jpeg.set(0x11C, _SHORT, 1)
        _strip(jpeg, writer, buffer.getvalue(), preview.height)
        sub_ifds.append(writer.ifd(jpeg))

    exif = _Ifd()
    if taken_at is not None:
        exif.set(0x9003, _ASCII, taken_at.strftime("%Y:%m:%d %H:%M:%S"))  # DateTimeOriginal
        if offset is not None:
            exif.set(0x9011, _ASCII, offset)  # OffsetTimeOriginal
    exif.set(0x9000, _UNDEFINED, b"0232")  # ExifVersion
    exif_offset = writer.ifd(exif)
    gps_offset = None
    if gps is not None:
        gps_ifd = _Ifd()
        gps_ifd.set(0, _BYTE, (2, 3, 0, 0))  # GPSVersionID
        for ref_tag, value_tag, number, refs in ((1, 2, gps[0], "NS"), (3, 4, gps[1], "EW")):
            gps_ifd.set(ref_tag, _ASCII, refs[0] if number >= 0 else refs[1])
            gps_ifd.set(value_tag, _RATIONAL, _dms(abs(number)))
        gps_offset = writer.ifd(gps_ifd)

    ifd0 = first_ifd(thumbnail_at, tuple(sub_ifds), exif_offset, gps_offset)
    return writer.finish(ifd0, ifd0_at)


def _ifd0(
    thumbnail: Image.Image,
    make: str,
    model: str,
    taken_at: datetime | None,
    orientation: int,
    strip: int,
    sub_ifds: tuple[int, ...],
    exif_offset: int,
    gps_offset: int | None,
) -> _Ifd:
    ifd0 = _Ifd()
    ifd0.set(0xFE, _LONG, 1)  # IFD0 is a thumbnail; the raw image is in a SubIFD
    ifd0.set(0x100, _LONG, thumbnail.width)
    ifd0.set(0x101, _LONG, thumbnail.height)
    ifd0.set(0x102, _SHORT, (8, 8, 8))
    ifd0.set(0x103, _SHORT, 1)
    ifd0.set(0x106, _SHORT, 2)  # RGB
    ifd0.set(0x10F, _ASCII, make)
    ifd0.set(0x110, _ASCII, model)
    ifd0.set(0x112, _SHORT, orientation)
    ifd0.set(0x115, _SHORT, 3)
    ifd0.set(0x11C, _SHORT, 1)
    if taken_at is not None:
        ifd0.set(0x132, _ASCII, taken_at.strftime("%Y:%m:%d %H:%M:%S"))  # DateTime
    ifd0.set(0x111, _LONG, strip)  # StripOffsets
    ifd0.set(0x116, _LONG, thumbnail.height)  # RowsPerStrip
    ifd0.set(0x117, _LONG, len(thumbnail.tobytes()))  # StripByteCounts
    ifd0.set(0x14A, _LONG, sub_ifds)  # SubIFDs
    ifd0.set(0x8769, _LONG, exif_offset)
    if gps_offset is not None:
        ifd0.set(0x8825, _LONG, gps_offset)
    ifd0.set(0xC612, _BYTE, (1, 4, 0, 0))  # DNGVersion
    ifd0.set(0xC613, _BYTE, (1, 1, 0, 0))  # DNGBackwardVersion
    ifd0.set(0xC614, _ASCII, f"{make} {model}")  # UniqueCameraModel
    ifd0.set(0xC621, _SRATIONAL, tuple(value for row in XYZ_TO_SRGB for value in row))
    ifd0.set(0xC628, _RATIONAL, (1, 1, 1))  # AsShotNeutral
    ifd0.set(0xC65A, _SHORT, 21)  # CalibrationIlluminant1: D65
    return ifd0


def _dms(value: float) -> tuple[float, float, float]:
    degrees = int(value)
    minutes = int((value - degrees) * 60)
    seconds = (value - degrees - minutes / 60) * 3600
    return degrees, minutes, round(seconds, 4)


# The first bytes of the RAW formats that cannot be built here, as their makers write them:
# enough for a sniffer, not for a decoder.
def synthetic_header(kind: str) -> bytes:
    """A header of ``kind`` ("CR2", "CR3", "NEF", "ARW", "RAF", "ORF", "RW2") padded to 512
    bytes; none of them holds an image."""
    if kind == "CR3":
        head = struct.pack(">I", 24) + b"ftypcrx " + struct.pack(">I", 1) + b"crx isom"
    elif kind == "RAF":
        head = b"FUJIFILMCCD-RAW 0201FF383501"
    elif kind == "ORF":
        head = b"IIRO\x08\x00\x00\x00"
    elif kind == "RW2":
        head = b"IIU\x00\x18\x00\x00\x00"
    elif kind == "CR2":
        head = b"II*\x00\x10\x00\x00\x00CR\x02\x00\x00\x00\x00\x00" + _tiny_ifd("Canon")
    elif kind in ("NEF", "ARW"):
        make = "NIKON CORPORATION" if kind == "NEF" else "SONY"
        head = b"II*\x00\x08\x00\x00\x00" + _tiny_ifd(make, cfa=True)
    else:
        raise ValueError(f"no header for {kind}")
    return head.ljust(512, b"\x00")


def _tiny_ifd(make: str, *, cfa: bool = False) -> bytes:
    """One IFD right after the header: Make (its text placed after the IFD) and, with ``cfa``,
    a CFA photometric interpretation, as the raw SubIFD of a NEF or ARW has."""
    count = 2 if cfa else 1
    start = 8 if cfa else 16
    text_offset = start + 2 + 12 * count + 4
    text = make.encode("ascii") + b"\x00"
    entries = struct.pack("<HHII", 0x10F, _ASCII, len(text), text_offset)
    if cfa:
        entries += struct.pack("<HHIHH", 0x106, _SHORT, 1, 32803, 0)
    return struct.pack("<H", count) + entries + struct.pack("<I", 0) + text


def main(out_dir: str) -> None:
    from workers.embedding.demo.scenes import Scene, render

    scene = render(Scene("star", "red", 1, "large", "middle", "blue", "plain"), (256, 192))
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    (target / "with-preview.dng").write_bytes(dng_bytes(scene, preview=scene))
    (target / "without-preview.dng").write_bytes(dng_bytes(scene))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else ".")
