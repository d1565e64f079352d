import io

import numpy as np
import pytest
from PIL import Image

from tests.conftest import encode, make_image
from workers.embedding.images import (
    IMAGE_FORMATS,
    RAW_FORMATS,
    ImageDecodeError,
    decode_image,
    decode_photo,
    format_info,
    identify_format,
    make_thumbnail,
)

NOT_AN_IMAGE = (
    "not a supported image (accepted: JPEG, PNG, WebP, GIF, TIFF, BMP, HEIC/HEIF, AVIF, "
    "JPEG 2000, Netpbm PNM/PBM/PGM/PPM, DNG, Canon CR2, Canon CR3, "
    "Nikon NEF, Sony ARW, Fujifilm RAF, Olympus ORF, Panasonic RW2)"
)
ORIENTATION = 0x0112


def test_decodes_jpeg_to_rgb():
    image = decode_image(encode(make_image(size=(64, 48))))
    assert (image.mode, image.size) == ("RGB", (64, 48))


def upright_scene() -> np.ndarray:
    """120x80, white, with a red block in its top-left corner: no turn or flip leaves it alike."""
    pixels = np.full((80, 120, 3), 255, dtype=np.uint8)
    pixels[:20, :30] = (255, 0, 0)
    return pixels


# How a camera stores the upright scene under each EXIF orientation: the tag says which side of
# the scene the stored row 0 and column 0 are (EXIF 2.32, section 4.6.5, Orientation), written
# here with numpy rather than with the Pillow transposes the decoder uses.
STORED = {
    1: lambda u: u,  # row 0 top, column 0 left
    2: lambda u: u[:, ::-1],  # top, right
    3: lambda u: u[::-1, ::-1],  # bottom, right
    4: lambda u: u[::-1, :],  # bottom, left
    5: lambda u: u.transpose(1, 0, 2),  # left, top
    6: lambda u: u[:, ::-1].transpose(1, 0, 2),  # right, top
    7: lambda u: u[::-1, ::-1].transpose(1, 0, 2),  # right, bottom
    8: lambda u: u[::-1, :].transpose(1, 0, 2),  # left, bottom
}


@pytest.mark.parametrize("min_side", [0, 60], ids=["full", "reduced"])
@pytest.mark.parametrize("orientation", sorted(STORED))
def test_exif_orientation_puts_every_pixel_where_it_belongs(orientation, min_side):
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    stored = Image.fromarray(np.ascontiguousarray(STORED[orientation](upright_scene())))
    data = encode(stored, quality=95, exif=exif.tobytes())

    decoded = decode_photo(data, min_side=min_side)  # 60: the JPEG decoder's half scale

    assert (decoded.width, decoded.height) == (120, 80)
    side = 120 if min_side == 0 else 60
    assert decoded.image.size == (side, side * 2 // 3)
    expected = np.asarray(Image.fromarray(upright_scene()).resize(decoded.image.size)).astype(int)
    pixels = np.asarray(decoded.image).astype(int)
    assert np.abs(pixels - expected).max(axis=2).mean() < 1.5  # JPEG noise (0.5), not a turn
    red, green, blue = pixels[side // 12, side // 8]  # the marker's centre
    assert red > 240 and green < 15 and blue < 15


def test_flattens_transparent_palette_png_onto_white():
    image = Image.new("P", (4, 4), 0)
    image.putpalette([255, 0, 0] + [0, 0, 0] * 255)
    data = encode(image, "PNG", transparency=0)
    assert decode_image(data).getpixel((0, 0)) == (255, 255, 255)


def test_scales_16_bit_greyscale_instead_of_clipping():
    image = Image.new("I;16", (4, 4), 32768)
    decoded = decode_image(encode(image, "PNG"))
    assert 120 <= decoded.getpixel((0, 0))[0] <= 135


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "the file is empty"),
        (b"hello, this is text", "not a supported image"),
        (b"<svg xmlns='http://www.w3.org/2000/svg'></svg>", "not a supported image"),
        (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n", "not a supported image"),
    ],
)
def test_refuses_non_images_with_a_reason(data, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        decode_image(data)


def test_an_animated_gif_is_its_first_frame():
    frames = [make_image(color=c, background="white") for c in ("red", "lime", "blue")]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100)

    image = decode_image(buffer.getvalue())

    red, green, blue = image.getpixel((160, 120))  # the shape's centre
    assert red > 200 and green < 60 and blue < 60


def test_refuses_truncated_jpeg():
    data = encode(make_image(size=(256, 256)), quality=95)
    with pytest.raises(ImageDecodeError, match="damaged or incomplete"):
        decode_image(data[: len(data) // 2])


def test_refuses_images_over_the_pixel_limit_before_decoding():
    data = encode(Image.new("L", (400, 300)), "PNG")
    with pytest.raises(ImageDecodeError, match="400x300 pixels, more than the limit of 100,000"):
        decode_image(data, max_pixels=100_000)


def test_the_pixel_limit_is_ours_not_pillows():
    # 90 M pixels: above Pillow's built-in guard (~89.5 M), below a limit raised for scans.
    data = encode(Image.new("1", (10_000, 9_000)), "PNG")
    assert identify_format(io.BytesIO(data), max_pixels=200_000_000) == "PNG"
    with pytest.raises(ImageDecodeError, match="more than the limit of 50,000,000"):
        identify_format(io.BytesIO(data), max_pixels=50_000_000)


def netpbm(magic: str, size: str, *rest: str | bytes) -> bytes:
    parts = [magic.encode(), size.encode()] + [
        r if isinstance(r, bytes) else r.encode() for r in rest
    ]
    return b"\n".join(parts)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (netpbm("P1", "2 1", "1 0"), [(0, 0, 0), (255, 255, 255)]),  # plain PBM: 1 is black
        (netpbm("P4", "2 1", b"\x80"), [(0, 0, 0), (255, 255, 255)]),
        (netpbm("P2", "2 1", "15", "0 15"), [(0, 0, 0), (255, 255, 255)]),
        (netpbm("P5", "2 1", "255", b"\x00\x80"), [(0, 0, 0), (128, 128, 128)]),
        (netpbm("P5", "2 1", "65535", b"\xff\xff\x80\x00"), [(255,) * 3, (128,) * 3]),
        (netpbm("P3", "2 1", "255", "255 0 0 0 0 255"), [(255, 0, 0), (0, 0, 255)]),
        (netpbm("P6", "2 1", "255", b"\xff\x00\x00\x00\xff\x00"), [(255, 0, 0), (0, 255, 0)]),
    ],
)
def test_decodes_the_netpbm_family(data, expected):
    image = decode_image(data)
    assert identify_format(io.BytesIO(data)) == "PPM"
    assert [image.getpixel((x, 0)) for x in range(2)] == expected


@pytest.mark.parametrize(
    "data",
    [
        netpbm("Pf", "1 1", "-1.0", b"\x00\x00\x80\x3f"),  # PFM: floats, would decode black
        netpbm("PyRGBA", "1 1", "255", b"\xff\x00\x00\xff"),  # Pillow's own, not Netpbm
        netpbm("P7", "1 1", "255", b"\xff"),  # PAM: Pillow has no decoder for it
    ],
)
def test_refuses_what_pillow_calls_ppm_but_is_not_netpbm_p1_to_p6(data):
    with pytest.raises(ImageDecodeError) as error:
        decode_image(data)
    assert str(error.value) == NOT_AN_IMAGE


def test_decodes_jpeg_2000_in_both_its_container_and_as_a_bare_codestream():
    scene = make_image(size=(64, 48))
    for params in ({}, {"no_jp2": True}):
        data = encode(scene, "JPEG2000", **params)
        assert identify_format(io.BytesIO(data)) == "JPEG2000"
        red, green, blue = decode_image(data).getpixel((32, 24))  # the red circle's centre
        assert red > 240 and green < 15 and blue < 15


def test_the_refusal_names_every_format_of_the_allowlist():
    with pytest.raises(ImageDecodeError) as error:
        decode_image(b"hello, this is text")
    assert str(error.value) == NOT_AN_IMAGE
    assert all(entry.label in NOT_AN_IMAGE for entry in IMAGE_FORMATS)


@pytest.mark.parametrize(
    "entry",
    [entry for entry in IMAGE_FORMATS if entry.name not in RAW_FORMATS],  # RAW: test_raw.py
    ids=lambda entry: entry.name,
)
def test_every_format_of_the_allowlist_is_sniffed_as_itself(entry):
    scene = make_image(size=(64, 48))
    if entry.name == "MPO":
        data = encode(scene, "MPO", save_all=True, append_images=[scene])
    else:
        data = encode(scene, entry.name)
    assert identify_format(io.BytesIO(data)) == entry.name
    assert format_info(entry.name) == entry


@pytest.mark.parametrize(
    ("image_format", "mime_type", "extension"),
    [
        ("JPEG", "image/jpeg", ".jpg"),
        ("MPO", "image/jpeg", ".jpg"),  # a JPEG with more pictures in it, as phones write them
        ("PNG", "image/png", ".png"),
        ("WEBP", "image/webp", ".webp"),
        ("GIF", "image/gif", ".gif"),
        ("TIFF", "image/tiff", ".tiff"),
        ("BMP", "image/bmp", ".bmp"),
        ("HEIF", "image/heic", ".heic"),
        ("AVIF", "image/avif", ".avif"),
        ("JPEG2000", "image/jp2", ".jp2"),
        ("PPM", "image/x-portable-anymap", ".pnm"),
        ("DNG", "image/x-adobe-dng", ".dng"),
        ("CR2", "image/x-canon-cr2", ".cr2"),
        ("CR3", "image/x-canon-cr3", ".cr3"),
        ("NEF", "image/x-nikon-nef", ".nef"),
        ("ARW", "image/x-sony-arw", ".arw"),
        ("RAF", "image/x-fuji-raf", ".raf"),
        ("ORF", "image/x-olympus-orf", ".orf"),
        ("RW2", "image/x-panasonic-rw2", ".rw2"),
    ],
)
def test_format_info_gives_the_type_and_extension_to_serve_a_file_with(
    image_format, mime_type, extension
):
    info = format_info(image_format)
    assert (info.mime_type, info.extension) == (mime_type, extension)


def test_format_info_knows_nothing_outside_the_allowlist():
    assert [format_info(name) for name in ("SVG", "PDF", "", "jpeg")] == [None] * 4


def test_identify_format_reads_content_not_names_and_rewinds():
    handle = io.BytesIO(encode(make_image(), "PNG"))
    assert identify_format(handle) == "PNG"
    assert handle.tell() == 0


def test_thumbnail_fits_the_requested_size():
    thumbnail = Image.open(io.BytesIO(make_thumbnail(make_image(size=(1000, 500)), max_side=200)))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (200, 100))
