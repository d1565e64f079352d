"""Fuzzing the upload and decode path with mutated real JPEG, PNG, GIF, WebP, HEIC, AVIF, TIFF,
BMP, JPEG 2000 and Netpbm files: every input is decoded to an RGB image or refused with
``ImageDecodeError`` (a reason fit to show), never another exception, a crash of the process,
or a hang.

The normal run tries a few hundred inputs; ``MEDIASEARCH_FUZZ_EXAMPLES=20000`` runs a longer
campaign with the same command (see docs/RELIABILITY.md).
"""

from __future__ import annotations

import io
import os
import random
import time
from functools import cache

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from tests.conftest import encode, make_image
from workers.embedding.images import (
    ImageDecodeError,
    decode_photo,
    identify_format,
    make_thumbnail,
)

EXAMPLES = int(os.environ.get("MEDIASEARCH_FUZZ_EXAMPLES", "300"))
# Far below the task time limit: an input that takes this long to decode is a hang.
SLOW_SECONDS = 2.0
MAX_PIXELS = 4_000_000


@pytest.fixture(autouse=True, scope="module")
def _resizer_imported():
    """The first resize imports torch (seconds): not decoding time, so not timed."""
    make_thumbnail(make_image(), max_side=64)


@cache
def seeds() -> dict[str, bytes]:
    """Small real files of every accepted format (those this Pillow can write)."""
    image = make_image(size=(96, 64))
    made = {}
    for name, params in {
        "JPEG": {"quality": 80, "exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\x00\x00"},
        "PNG": {},
        "GIF": {},
        "WEBP": {"quality": 70},
        "TIFF": {},
        "BMP": {},
        "HEIF": {"quality": 50},
        "AVIF": {"quality": 50},
        "JPEG2000": {},
        "PPM": {},
    }.items():
        try:
            made[name] = encode(image, name, **params)
        except (KeyError, OSError, ValueError):
            continue  # no encoder for it in this build; the others still run
    progressive = io.BytesIO()
    image.save(progressive, "JPEG", progressive=True)
    made["JPEG-progressive"] = progressive.getvalue()
    animated = io.BytesIO()
    image.save(animated, "GIF", save_all=True, append_images=[make_image(size=(96, 64))])
    made["GIF-animated"] = animated.getvalue()
    return made


def test_there_are_seeds_of_the_main_formats():
    assert {"JPEG", "PNG", "GIF", "WEBP", "HEIF", "JPEG2000", "PPM"} <= set(seeds())


@st.composite
def mutated_files(draw) -> bytes:
    data = bytearray(seeds()[draw(st.sampled_from(sorted(seeds())))])
    for _ in range(draw(st.integers(1, 6))):
        kind = draw(st.sampled_from(["flip", "header", "truncate", "insert", "delete", "zero"]))
        # Headers hold the sizes and offsets a decoder trusts: mutate them most.
        where = draw(st.integers(0, len(data) - 1)) if data else 0
        if kind == "header" and data:
            where = draw(st.integers(0, min(64, len(data) - 1)))
            data[where] = draw(st.integers(0, 255))
        elif kind == "flip" and data:
            data[where] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[where:]
        elif kind == "insert":
            data[where:where] = draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del data[where : where + draw(st.integers(1, 32))]
        elif kind == "zero" and data:
            size = draw(st.sampled_from([1, 2, 4]))
            value = draw(st.sampled_from([0, 0xFF, 0x7F, 0x80]))
            data[where : where + size] = bytes([value]) * size
    return bytes(data)


def decode_or_refuse(data: bytes) -> str:
    """What the web request and then the worker do with an upload; "ok" or the reason."""
    started = time.monotonic()
    try:
        identify_format(io.BytesIO(data), max_pixels=MAX_PIXELS)
        photo = decode_photo(io.BytesIO(data), max_pixels=MAX_PIXELS)
        assert photo.image.mode == "RGB" and photo.image.width > 0 and photo.image.height > 0
        make_thumbnail(photo.image, max_side=64)
        outcome = "ok"
    except ImageDecodeError as exc:
        outcome = str(exc)
        assert outcome, "a refusal needs a reason"
    elapsed = time.monotonic() - started
    assert elapsed < SLOW_SECONDS, f"decoding took {elapsed:.1f}s"
    return outcome


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,  # timed by decode_or_refuse itself, against SLOW_SECONDS
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    database=None,
    derandomize=EXAMPLES <= 300,  # the normal run is reproducible; a campaign explores
)


@FUZZ
@given(mutated_files())
def test_mutated_files_decode_or_are_refused_with_a_reason(data):
    decode_or_refuse(data)


@FUZZ
@given(st.binary(max_size=2048))
def test_arbitrary_bytes_decode_or_are_refused_with_a_reason(data):
    decode_or_refuse(data)


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"\xff\xd8\xff",  # a JPEG that stops after its marker
        b"\x89PNG\r\n\x1a\n",  # a PNG signature alone
        b"GIF89a\xff\xff\xff\xff\x00\x00",  # a 65535x65535 GIF header
        b"RIFF\x00\x00\x00\x00WEBPVP8 ",
        b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
        b"<html><script>alert(1)</script></html>",
    ],
    ids=["empty", "jpeg-marker", "png-signature", "giant-gif", "webp-header", "svg", "html"],
)
def test_known_nasty_inputs_are_refused(data):
    assert decode_or_refuse(data) != "ok"


@pytest.mark.parametrize("name", ["HEIF", "AVIF"])
def test_damaged_heif_and_avif_are_refused_with_a_reason(name):
    """Regression: their C decoders raised RuntimeError and EOFError past the old handlers."""
    if name not in seeds():
        pytest.skip(f"this Pillow cannot write {name}")
    rng = random.Random(1)
    outcomes = set()
    for _ in range(300):
        data = bytearray(seeds()[name])
        for _ in range(2):
            data[rng.randrange(len(data))] = rng.randrange(256)
        outcomes.add("ok" if decode_or_refuse(bytes(data)) == "ok" else "refused")
    assert "refused" in outcomes


def test_a_decompression_bomb_is_refused_before_decoding():
    bomb = encode(Image.new("L", (4000, 4000)), "PNG")  # 16 MP in a few kB
    started = time.monotonic()
    with pytest.raises(ImageDecodeError, match="pixels"):
        decode_photo(bomb, max_pixels=MAX_PIXELS)
    assert time.monotonic() - started < 0.5
