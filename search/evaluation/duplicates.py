"""Near-duplicate grouping measured on generated pictures whose truth we know.

A library is built from held-out demo scenes: each scene's picture, an edited copy of it (the
near-duplicate to find) and, for every other scene, a *sibling*: another picture of the same
labels, arranged differently (merely similar: it must not be grouped). The other scenes are the
distinct pictures. Photos go through what the worker does (JPEG decode, model, thumbnail), pairs
are found as ``near_duplicate_pairs_find`` finds them (the nearest neighbours within the widest
distance, confirmed by the thumbnails' pixels) and grouped by the page's own union-find, so the
figures are those of the product. Used by ``manage.py evaluate_duplicates`` and the tests.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from PIL import Image, ImageEnhance

from search.duplicates.selectors import connected_groups
from search.duplicates.services import NEAR_DUPLICATE_NEIGHBOURS
from workers.embedding.demo.scenes import random_scene, scene_family, scene_jpeg, scene_variant
from workers.embedding.images import decode_image, decode_photo, make_thumbnail
from workers.embedding.model import ClipEngine
from workers.embedding.pixels import pixel_correlation, pixel_signature

# The edits a copy gets, each drawn at random up to these bounds, all together.
MAX_CROP = 0.02  # of each side
MIN_SCALE = 0.5
MAX_BRIGHTNESS = 0.05
JPEG_QUALITY = (60, 95)
MAX_SATURATION = 0.05


@dataclass(frozen=True)
class GeneratedPhoto:
    scene: int  # which generated scene: its picture, the copy and the sibling share it
    picture: int  # equal for a picture and its copies: these are the near-duplicates
    family: tuple  # the scene's labels: another picture of the same family is merely similar
    kind: str  # "original", "copy" or "sibling"
    data: bytes  # the JPEG file as it would be uploaded


def generate_library(*, scenes: int, seed: int) -> list[GeneratedPhoto]:
    """Per held-out scene: its picture and an edited copy; every other scene, also a sibling."""
    rng = random.Random(seed)
    photos: list[GeneratedPhoto] = []
    for index in range(scenes):
        scene = random_scene(rng, split="heldout")
        original = scene_jpeg(scene, rng)
        family = scene_family(scene)
        picture = len(photos)
        photos.append(GeneratedPhoto(index, picture, family, "original", original))
        photos.append(GeneratedPhoto(index, picture, family, "copy", edited_copy(original, rng)))
        if index % 2 == 1:
            sibling = scene_jpeg(scene_variant(scene, rng), rng)
            photos.append(GeneratedPhoto(index, len(photos), family, "sibling", sibling))
    return photos


def edited_copy(data: bytes, rng: random.Random) -> bytes:
    """A near-duplicate as people make them: cropped, resized, brightened, saturated, re-saved.

    Cropping is up to ``MAX_CROP`` of each side, resizing to 50-100%, brightness and saturation
    within ±5%, JPEG quality 60-95. No rotation.
    """
    image = decode_image(data)
    width, height = image.size
    left, top, right, bottom = (rng.uniform(0, MAX_CROP) for _ in range(4))
    image = image.crop(
        (round(width * left), round(height * top),
         round(width * (1 - right)), round(height * (1 - bottom)))
    )  # fmt: skip
    scale = rng.uniform(MIN_SCALE, 1.0)
    image = image.resize(
        (max(1, round(image.width * scale)), max(1, round(image.height * scale))),
        Image.Resampling.LANCZOS,
    )
    image = ImageEnhance.Brightness(image).enhance(1 + rng.uniform(-MAX_BRIGHTNESS, MAX_BRIGHTNESS))
    image = ImageEnhance.Color(image).enhance(1 + rng.uniform(-MAX_SATURATION, MAX_SATURATION))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=rng.randint(*JPEG_QUALITY))
    return buffer.getvalue()


@dataclass(frozen=True)
class EmbeddedLibrary:
    photos: list[GeneratedPhoto]
    vectors: np.ndarray  # (n, dim), unit length, in photo order
    signatures: list[np.ndarray]  # pixel signatures of the thumbnails, in photo order


def embed_library(engine: ClipEngine, photos: Sequence[GeneratedPhoto]) -> EmbeddedLibrary:
    """Decode, encode and thumbnail each photo as the worker does."""
    vectors, signatures = [], []
    for start in range(0, len(photos), 64):
        images = [
            decode_photo(photo.data, max_pixels=settings.MEDIASEARCH_MAX_IMAGE_PIXELS).image
            for photo in photos[start : start + 64]
        ]
        vectors.append(engine.encode_images(images))
        for image in images:
            thumbnail = make_thumbnail(image, max_side=settings.MEDIASEARCH_THUMBNAIL_SIZE)
            signatures.append(pixel_signature(decode_image(thumbnail)))
    return EmbeddedLibrary(
        photos=list(photos), vectors=np.concatenate(vectors), signatures=signatures
    )


def library_pairs(
    library: EmbeddedLibrary,
    *,
    max_distance: float,
    min_pixel_correlation: float | None,
    neighbours: int | None = None,
) -> list[tuple[int, int, float]]:
    """The pairs ``near_duplicate_pairs_find`` would record, as (index, index, distance).

    Exact nearest neighbours stand in for the HNSW index, which finds all of them at these
    distances. ``min_pixel_correlation=None`` leaves the pixel check out, to compare.
    """
    neighbours = neighbours or NEAR_DUPLICATE_NEIGHBOURS
    distances = 1.0 - library.vectors @ library.vectors.T
    np.fill_diagonal(distances, np.inf)
    pairs: dict[tuple[int, int], float] = {}
    for i, row in enumerate(distances):
        for j in np.argsort(row, kind="stable")[:neighbours]:
            j = int(j)
            if row[j] > max_distance:
                break
            key = (min(i, j), max(i, j))
            if key in pairs:
                continue
            if min_pixel_correlation is not None:
                correlation = pixel_correlation(library.signatures[i], library.signatures[j])
                if correlation < min_pixel_correlation:
                    continue
            pairs[key] = float(row[j])
    return [(i, j, distance) for (i, j), distance in pairs.items()]


@dataclass(frozen=True)
class GroupingQuality:
    threshold: float
    copies: int  # picture-copy pairs in the library
    copies_grouped: int  # of which the page shows in one group
    siblings: int  # merely similar photos in the library
    siblings_grouped: int  # of which the page wrongly shows with their scene's picture
    groups: int
    false_groups: int  # groups that hold more than one picture
    merging_siblings: int  # false groups of one family only (same labels, another layout)
    merging_scenes: int  # false groups that hold different labels

    @property
    def recall(self) -> float:
        return self.copies_grouped / self.copies if self.copies else 0.0

    @property
    def false_group_rate(self) -> float:
        return self.false_groups / self.groups if self.groups else 0.0


def measure_grouping(
    library: EmbeddedLibrary, pairs: Sequence[tuple[int, int, float]], *, threshold: float
) -> GroupingQuality:
    """How the page would group ``library`` at ``threshold``, against the truth."""
    photos = library.photos
    groups = connected_groups((i, j) for i, j, distance in pairs if distance <= threshold)
    group_of = {index: number for number, group in enumerate(groups) for index in group}
    copies = [index for index, photo in enumerate(photos) if photo.kind == "copy"]
    original_of = {photo.scene: i for i, photo in enumerate(photos) if photo.kind == "original"}
    grouped = sum(
        1
        for index in copies
        if index in group_of and group_of[index] == group_of.get(original_of[photos[index].scene])
    )
    siblings = [index for index, photo in enumerate(photos) if photo.kind == "sibling"]
    siblings_grouped = sum(
        1
        for index in siblings
        if index in group_of and group_of[index] == group_of.get(original_of[photos[index].scene])
    )
    false_groups = [group for group in groups if len({photos[i].picture for i in group}) > 1]
    merging_scenes = sum(1 for group in false_groups if len({photos[i].family for i in group}) > 1)
    return GroupingQuality(
        threshold=threshold,
        copies=len(copies),
        copies_grouped=grouped,
        siblings=len(siblings),
        siblings_grouped=siblings_grouped,
        groups=len(groups),
        false_groups=len(false_groups),
        merging_siblings=len(false_groups) - merging_scenes,
        merging_scenes=merging_scenes,
    )


def distance_percentiles(
    library: EmbeddedLibrary, percentiles: Sequence[float] = (0, 1, 5, 10, 50, 90, 95, 99, 100)
) -> dict[str, list[float]]:
    """Cosine distances of each kind of pair, at ``percentiles``: copies (picture-copy),
    siblings (picture-sibling) and each picture's nearest picture of different labels."""
    photos, vectors = library.photos, library.vectors
    distances = 1.0 - vectors @ vectors.T
    original_of = {photo.scene: i for i, photo in enumerate(photos) if photo.kind == "original"}
    copy_d, sibling_d = [], []
    for i, photo in enumerate(photos):
        if photo.kind == "copy":
            copy_d.append(distances[original_of[photo.scene], i])
        elif photo.kind == "sibling":
            sibling_d.append(distances[original_of[photo.scene], i])
    originals = [i for i, photo in enumerate(photos) if photo.kind == "original"]
    families = np.array([hash(photos[i].family) for i in originals])
    among = distances[np.ix_(originals, originals)]
    among[families[:, None] == families[None, :]] = np.inf
    nearest_other = among.min(axis=1)
    return {
        name: [float(np.percentile(values, p)) for p in percentiles]
        for name, values in (
            ("copy", copy_d),
            ("sibling", sibling_d),
            ("nearest other scene", nearest_other),
        )
    }
