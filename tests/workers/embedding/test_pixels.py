from PIL import Image, ImageEnhance

from tests.conftest import encode, make_image
from workers.embedding.images import decode_image
from workers.embedding.pixels import pixel_correlation
from workers.embedding.pixels import pixel_signature as signature


def test_a_resized_brighter_copy_correlates_almost_perfectly():
    picture = make_image(size=(400, 300))
    copy = ImageEnhance.Brightness(picture.resize((200, 150))).enhance(1.05)
    assert pixel_correlation(signature(picture), signature(copy)) > 0.98


def test_the_same_shape_elsewhere_correlates_poorly():
    picture = make_image(size=(400, 300))
    moved = Image.new("RGB", (400, 300), "white")
    moved.paste(picture.crop((100, 0, 400, 300)), (0, 0))  # the circle moves a quarter left
    assert pixel_correlation(signature(picture), signature(moved)) < 0.5


def test_flat_images_match_each_other_and_nothing_else():
    white = Image.new("RGB", (50, 50), "white")
    grey = Image.new("RGB", (80, 80), (128, 128, 128))
    assert pixel_correlation(signature(white), signature(grey)) == 1.0
    assert pixel_correlation(signature(white), signature(make_image())) == 0.0


def test_signature_is_small_rgb_whatever_the_input():
    grey_png = decode_image(encode(make_image(size=(640, 90)).convert("L"), "PNG"))
    assert signature(grey_png).shape == (32, 32, 3)
