import io

import pytest
from PIL import Image

from tests.conftest import encode, make_image
from workers.embedding.images import (
    ImageDecodeError,
    decode_image,
    identify_format,
    make_thumbnail,
)


def test_decodes_jpeg_to_rgb():
    image = decode_image(encode(make_image(size=(64, 48))))
    assert (image.mode, image.size) == ("RGB", (64, 48))


def test_applies_exif_orientation():
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    data = encode(make_image(size=(80, 40)), exif=exif.tobytes())
    assert decode_image(data).size == (40, 80)


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


def test_identify_format_reads_content_not_names_and_rewinds():
    handle = io.BytesIO(encode(make_image(), "PNG"))
    assert identify_format(handle) == "PNG"
    assert handle.tell() == 0


def test_thumbnail_fits_the_requested_size():
    thumbnail = Image.open(io.BytesIO(make_thumbnail(make_image(size=(1000, 500)), max_side=200)))
    assert (thumbnail.format, thumbnail.size) == ("JPEG", (200, 100))
