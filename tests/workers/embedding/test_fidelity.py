"""Every speed-up of the ingest path must give the embedding the plain fp32 path gives.

The plain path is what open_clip's own examples do: decode the whole file, preprocess, encode.
The fast path decodes a JPEG at a reduced scale, resizes renditions from each other and feeds
the model the smallest one that still covers its input. Photos here are large and detailed
(noise and shapes at 12 MP-like sizes), because a flat test picture would hide any loss.

Each model's floor is set from what its fast path gives (torch 2.14, Pillow 13, these photos):
cosine 0.999989 at worst for the demo model, 0.999969 for ViT-B-32. A nearest-neighbour resize
in place of the antialiased one gives at most 0.999917 and 0.999862, and must fail the floor:
the gate would catch a real loss of quality, as 0.999 did not.
"""

import io

import numpy as np
import pytest
from PIL import Image, ImageDraw

import workers.embedding.images as images_module
from tests.workers.embedding.vectors import assert_unit_length, cosines
from workers.embedding.images import decode_photo, prepare_photo
from workers.embedding.model import DEMO_MODEL_NAME, DEMO_PRETRAINED, ModelSpec, load_engine

ORIENTATION = 0x0112
SIDES = (384, 1600)
# The model, and the least cosine its fast path may give to the plain path (see above).
MODELS = {
    "demo": ((DEMO_MODEL_NAME, DEMO_PRETRAINED), 0.99998),
    "ViT-B-32": (("ViT-B-32", ""), 0.99995),
}


def detailed_photo(seed: int, size: tuple[int, int] = (3200, 2400)) -> Image.Image:
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (size[1] // 16, size[0] // 16, 3), dtype=np.uint8)
    image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(image)
    for _ in range(6):
        x, y, r = rng.uniform(0, size[0]), rng.uniform(0, size[1]), rng.uniform(100, 600)
        draw.ellipse(
            (x - r, y - r, x + r, y + r), fill=tuple(int(v) for v in rng.integers(0, 256, 3))
        )
    grain = rng.normal(0, 8, (size[1], size[0], 1))
    return Image.fromarray(np.clip(np.asarray(image) + grain, 0, 255).astype(np.uint8))


def jpeg(image: Image.Image, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=90, **params)
    return buffer.getvalue()


PHOTOS = [jpeg(detailed_photo(seed)) for seed in range(3)]


@pytest.fixture(scope="module", params=sorted(MODELS))
def model(request):
    spec, floor = MODELS[request.param]
    engine = load_engine(ModelSpec(*spec))
    reference = engine.encode_images([decode_photo(data).image for data in PHOTOS])
    return engine, floor, reference


def fast_path_embeddings(engine) -> np.ndarray:
    prepared = [prepare_photo(data, sides=SIDES, model_side=engine.input_side) for data in PHOTOS]
    return engine.encode_images([item.model_image for item in prepared])


def test_fast_path_embeddings_match_a_full_decode(model):
    engine, floor, reference = model

    fast = fast_path_embeddings(engine)

    assert_unit_length(fast)
    assert_unit_length(reference)
    assert cosines(fast, reference).min() >= floor
    # The margin means something: different photos are much further apart than that.
    assert (reference @ reference.T)[np.triu_indices(len(PHOTOS), 1)].max() < 0.99


def nearest_neighbour_reduced(image: Image.Image, max_side: int) -> Image.Image:
    """``images._reduced`` done the cheap way: same sizes, no antialiasing."""
    width, height = image.size
    scale = max_side / max(width, height)
    if scale >= 1:
        return image.copy()
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return image.convert("RGB").resize(size, Image.Resampling.NEAREST)


def test_a_nearest_neighbour_resize_fails_the_floor(model, monkeypatch):
    engine, floor, reference = model
    monkeypatch.setattr(images_module, "_reduced", nearest_neighbour_reduced)

    cheap = fast_path_embeddings(engine)

    assert cosines(cheap, reference).max() < floor


def test_reduced_decode_keeps_the_original_size_and_covers_the_largest_rendition():
    decoded = decode_photo(PHOTOS[0], min_side=1600)

    assert (decoded.width, decoded.height) == (3200, 2400)
    assert decoded.image.size == (1600, 1200)  # decoded at half scale by the JPEG decoder
    assert decode_photo(PHOTOS[0], min_side=1000).image.size == (1600, 1200)
    assert decode_photo(PHOTOS[0], min_side=801).image.size == (1600, 1200)
    assert decode_photo(PHOTOS[0], min_side=800).image.size == (800, 600)
    assert decode_photo(PHOTOS[0]).image.size == (3200, 2400)


def test_reduced_decode_of_a_turned_photo_gives_the_upright_original_size():
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # stored landscape, shown portrait
    data = jpeg(detailed_photo(5, size=(2400, 1600)), exif=exif)

    decoded = decode_photo(data, min_side=600)

    assert (decoded.width, decoded.height) == (1600, 2400)
    assert decoded.image.size == (400, 600)


def test_renditions_come_from_one_decode_at_their_exact_sizes():
    prepared = prepare_photo(PHOTOS[1], sides=SIDES, model_side=224)

    sizes = [Image.open(io.BytesIO(data)).size for data in prepared.renditions]
    assert sizes == [(384, 288), (1600, 1200)]
    assert prepared.model_image.size == (384, 288)  # the smallest that covers 224
    assert (prepared.decoded.width, prepared.decoded.height) == (3200, 2400)
    assert prepare_photo(PHOTOS[1], sides=SIDES, model_side=300).model_image.size == (1600, 1200)


def test_small_and_non_jpeg_photos_are_decoded_whole():
    png = io.BytesIO()
    detailed_photo(1, size=(800, 600)).save(png, format="PNG")

    prepared = prepare_photo(png.getvalue(), sides=SIDES, model_side=224)

    assert prepared.decoded.image.size == (800, 600)
    assert [Image.open(io.BytesIO(d)).size for d in prepared.renditions] == [(384, 288), (800, 600)]
