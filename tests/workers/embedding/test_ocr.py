"""The OCR readers on rendered text: real RapidOCR (PP-OCR models from its wheel) and the real
tesseract program."""

import shutil
import stat
import time

import pytest
from PIL import Image, ImageDraw, ImageFont

from workers.embedding.ocr import (
    OcrTimeout,
    OcrUnavailable,
    TesseractReader,
    TextBox,
    _unturned,
    fold,
    load_reader,
    read_text,
    words_of,
)

needs_tesseract = pytest.mark.skipif(
    shutil.which("tesseract") is None, reason="tesseract-ocr is not installed (.ci/run installs it)"
)


@pytest.fixture(scope="module")
def rapidocr():
    return load_reader("rapidocr", threads=1)


def sign(text: str = "TESCO receipt", *, at=(60, 80), size=(720, 400)) -> Image.Image:
    image = Image.new("RGB", size, (90, 120, 150))
    draw = ImageDraw.Draw(image)
    draw.rectangle((at[0] - 20, at[1] - 20, at[0] + 520, at[1] + 90), fill=(240, 240, 230))
    draw.text(at, text, fill=(20, 20, 20), font=ImageFont.load_default(size=60))
    return image


def test_fold_removes_case_and_accents():
    assert fold("Café CRÈME Straße Ångström") == "cafe creme strasse angstrom"
    assert words_of("Hôtel-Miramar, n°42_b") == ["hotel", "miramar", "n", "42", "b"]


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_rapidocr_reads_text_turned_any_quarter(rapidocr, rotation):
    picture = sign().rotate(rotation, expand=True)
    reading = read_text(picture, reader=rapidocr)
    assert reading.detected
    assert words_of(reading.text) == ["tesco", "receipt"]
    assert all(0.5 <= word.confidence <= 1 for word in reading.words)


def test_rapidocr_box_is_where_the_word_is(rapidocr):
    reading = read_text(sign(at=(60, 80)), reader=rapidocr)
    tesco = next(word for word in reading.words if fold(word.text) == "tesco")
    left, top, right, bottom = tesco.box
    # Drawn from x=60 px (of 720), y=80 px (of 400), 60 px high.
    assert 0.05 < left < 0.12 and 0.15 < top < 0.25 and bottom < 0.45 and right < 0.5


def test_a_picture_without_text_skips_recognition(rapidocr):
    reading = read_text(Image.new("RGB", (640, 480), (30, 140, 60)), reader=rapidocr)
    assert reading.words == () and not reading.detected


def test_a_100_megapixel_picture_is_read_reduced_within_the_limit(rapidocr):
    huge = Image.new("RGB", (12000, 8400), (200, 190, 170))
    ImageDraw.Draw(huge).text(
        (800, 800), "MIRAMAR", fill=(10, 10, 10), font=ImageFont.load_default(size=1200)
    )
    started = time.monotonic()
    reading = read_text(huge, reader=rapidocr, max_side=1280, time_limit=60)
    assert time.monotonic() - started < 60
    assert words_of(reading.text) == ["miramar"]


def test_time_limit_is_kept(rapidocr):
    with pytest.raises(OcrTimeout):
        read_text(sign(), reader=rapidocr, time_limit=0)


@needs_tesseract
def test_tesseract_reads_upright_and_turned_text():
    reader = TesseractReader()
    assert words_of(read_text(sign(), reader=reader).text) == ["tesco", "receipt"]
    turned = read_text(sign().rotate(90, expand=True), reader=reader)
    assert turned.rotation != 0  # read after turning it
    assert words_of(turned.text) == ["tesco", "receipt"]
    # The box is in the coordinates of the picture as given: turned a quarter left, "TESCO"
    # (x 60-250 of 720, y 80-140 of 400 upright) lies low along the left edge.
    left, top, right, bottom = turned.words[0].box
    assert 0.15 < left < right < 0.4 and 0.6 < top < bottom < 0.95


def test_tesseract_that_hangs_is_stopped(tmp_path):
    program = tmp_path / "tesseract"
    program.write_text("#!/bin/sh\nsleep 30\n")
    program.chmod(program.stat().st_mode | stat.S_IEXEC)
    started = time.monotonic()
    with pytest.raises(OcrTimeout):
        read_text(sign(), reader=TesseractReader(program=str(program)), time_limit=1)
    assert time.monotonic() - started < 10


def test_missing_tesseract_says_so():
    with pytest.raises(OcrUnavailable, match="not installed"):
        read_text(sign(), reader=TesseractReader(program="/nonexistent/tesseract"))


def test_unknown_engine_is_refused():
    with pytest.raises(ValueError, match="unknown OCR engine 'paddle'"):
        load_reader("paddle")


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_boxes_turn_back_to_the_picture(rotation):
    # A box in the top-left corner of a picture, seen in the picture turned by ``rotation``,
    # comes back to the top-left corner.
    picture = Image.new("L", (200, 100), 0)
    ImageDraw.Draw(picture).rectangle((10, 10, 49, 29), fill=255)
    turned = picture.rotate(rotation, expand=True)
    left, top, right, bottom = turned.getbbox()
    w, h = turned.size
    seen = TextBox(text="x", confidence=1.0, box=(left / w, top / h, right / w, bottom / h))
    back = _unturned(seen, rotation).box
    assert back == pytest.approx((10 / 200, 10 / 100, 50 / 200, 30 / 100), abs=0.01)
