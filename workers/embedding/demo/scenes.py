"""Procedurally generated scenes with captions: the demo model's training and test data.

A scene is one to three identical shapes (colour, shape, size) on a plain, striped or dotted
background, and, for a single shape, where it is (left, right, top, bottom, middle). Everything a
caption says is a *label*; where exactly the shapes sit and their exact shades come from a
``layout_seed``, so two scenes with the same labels but different seeds are two pictures of the
same thing (a "family").

Label combinations are split by a stable hash: ``split="train"`` never yields a combination that
``split="heldout"`` does, so held-out captions are sentences the model never saw in training.
Plain Python + Pillow; no torch, no Django.
"""

from __future__ import annotations

import hashlib
import io
import math
import random
from dataclasses import dataclass, replace
from typing import Literal

from PIL import Image, ImageDraw

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (255, 140, 0),
    "yellow": (250, 220, 40),
    "green": (30, 160, 50),
    "blue": (30, 70, 220),
    "purple": (128, 30, 150),
    "pink": (255, 160, 200),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
    "grey": (128, 128, 128),
}
SHAPES = ("circle", "square", "triangle", "star", "cross")
COUNTS = (1, 2, 3)
SIZES = ("small", "large")
POSITIONS = ("left", "right", "top", "bottom", "middle")
PATTERNS = ("plain", "striped", "dotted")

Split = Literal["train", "heldout", "any"]
# One label combination in HELDOUT_EVERY is kept out of training.
HELDOUT_EVERY = 10
_COUNT_WORDS = {1: "one", 2: "two", 3: "three"}
_POSITION_PHRASES = {
    "left": ("on the left", "at the left"),
    "right": ("on the right", "at the right"),
    "top": ("at the top", "near the top"),
    "bottom": ("at the bottom", "near the bottom"),
    "middle": ("in the middle", "in the centre"),
}
_PLURALS = {"cross": "crosses"}


@dataclass(frozen=True)
class Scene:
    shape: str
    colour: str
    count: int
    size: str
    position: str | None  # only for a single shape
    background: str
    pattern: str
    layout_seed: int = 0


def scene_family(scene: Scene) -> tuple:
    """Everything a caption can say about ``scene``: equal families show the same thing."""
    return (
        scene.shape,
        scene.colour,
        scene.count,
        scene.size,
        scene.position,
        scene.background,
        scene.pattern,
    )


def split_of(scene: Scene) -> Split:
    """Which split the label combination of ``scene`` belongs to (stable across runs)."""
    key = repr(scene_family(scene)).encode()
    bucket = int.from_bytes(hashlib.sha256(key).digest()[:4], "big") % HELDOUT_EVERY
    return "heldout" if bucket == 0 else "train"


def random_scene(rng: random.Random, split: Split = "any") -> Scene:
    """A random scene whose label combination lies in ``split``."""
    while True:
        count = rng.choice(COUNTS)
        colour = rng.choice(list(COLOURS))
        scene = Scene(
            shape=rng.choice(SHAPES),
            colour=colour,
            count=count,
            size=rng.choice(SIZES),
            position=rng.choice(POSITIONS) if count == 1 else None,
            background=rng.choice([name for name in COLOURS if name != colour]),
            pattern=rng.choice(PATTERNS),
            layout_seed=rng.getrandbits(32),
        )
        if split == "any" or split_of(scene) == split:
            return scene


def scene_variant(scene: Scene, rng: random.Random) -> Scene:
    """Another picture of the same family: new placement and shades, same labels."""
    return replace(scene, layout_seed=rng.getrandbits(32))


# --- captions -------------------------------------------------------------------------------


def caption(scene: Scene, rng: random.Random) -> str:
    """A full description of ``scene`` in one of several phrasings; says every label."""
    return _sentence(scene, rng, keep=set(_OPTIONAL_PARTS))


_OPTIONAL_PARTS = ("count", "size", "colour", "shape", "position", "background", "pattern")


def partial_caption(scene: Scene, rng: random.Random) -> str:
    """A shorter description that leaves some labels out, as people type queries."""
    keep = {part for part in _OPTIONAL_PARTS if rng.random() < 0.55}
    if "colour" not in keep and "shape" not in keep:
        keep.add(rng.choice(("colour", "shape")))
    if "pattern" in keep:
        keep.add("background")
    return _sentence(scene, rng, keep=keep)


def _sentence(scene: Scene, rng: random.Random, *, keep: set[str]) -> str:
    plural = scene.count > 1
    noun = _plural(scene.shape) if plural else scene.shape
    if "shape" not in keep:
        noun = "shapes" if plural else rng.choice(("shape", "object"))
    words = []
    if "size" in keep:
        words.append(scene.size)
    if "colour" in keep:
        words.append(scene.colour)
    words.append(noun)
    if "count" in keep or not plural:
        count = _COUNT_WORDS[scene.count]
        if scene.count == 1 and rng.random() < 0.7:
            count = "an" if words[0][0] in "aeiou" else "a"
        words.insert(0, count)
    objects = " ".join(words)
    if scene.position and "position" in keep:
        objects += " " + rng.choice(_POSITION_PHRASES[scene.position])
    if "background" not in keep:
        return rng.choice((objects, f"a photo of {objects}", f"a picture of {objects}"))

    ground = scene.background
    if "pattern" in keep and (scene.pattern != "plain" or rng.random() < 0.5):
        ground = f"{scene.pattern} {ground}"
    template = rng.choice(
        (
            "{o} on a {g} background",
            "a photo of {o} on a {g} background",
            "a picture of {o} on a {g} background",
            "{o}, {g} background",
            "a {g} background with {o}",
        )
    )
    return template.format(o=objects, g=ground)


def _plural(noun: str) -> str:
    return _PLURALS.get(noun, noun + "s")


# --- rendering ------------------------------------------------------------------------------


def render(scene: Scene, size: tuple[int, int] = (256, 256)) -> Image.Image:
    """Draw ``scene`` as an RGB image; the same scene and size always give the same pixels."""
    rng = random.Random(scene.layout_seed)
    width, height = size
    unit = min(width, height)
    background = _shade(COLOURS[scene.background], rng)
    image = Image.new("RGB", size, background)
    draw = ImageDraw.Draw(image)
    _draw_pattern(draw, scene.pattern, background, size, rng)
    colour = _shade(COLOURS[scene.colour], rng)
    for cx, cy, diameter in _layout(scene, rng):
        _draw_shape(draw, scene.shape, cx * width, cy * height, diameter * unit, colour, rng)
    return image


def _shade(rgb: tuple[int, int, int], rng: random.Random, spread: int = 16) -> tuple[int, ...]:
    return tuple(min(255, max(0, c + rng.randint(-spread, spread))) for c in rgb)


def _draw_pattern(draw, pattern, background, size, rng) -> None:
    if pattern == "plain":
        return
    width, height = size
    dark = sum(background) < 3 * 110
    mix = (255, 255, 255) if dark else (0, 0, 0)
    amount = 0.4 if dark else 0.3
    ink = tuple(round(b + (m - b) * amount) for b, m in zip(background, mix, strict=True))
    step = min(width, height) * rng.uniform(0.09, 0.13)
    if pattern == "striped":
        stripe = step * 0.45
        if rng.random() < 0.5:
            for x in _frange(rng.uniform(0, step), width, step):
                draw.rectangle((x, 0, x + stripe, height), fill=ink)
        else:
            for y in _frange(rng.uniform(0, step), height, step):
                draw.rectangle((0, y, width, y + stripe), fill=ink)
    else:  # dotted
        radius = step * 0.2
        offset = rng.uniform(0, step)
        for y in _frange(offset, height, step):
            for x in _frange(offset, width, step):
                draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=ink)


def _frange(start: float, stop: float, step: float):
    value = start
    while value < stop:
        yield value
        value += step


def _layout(scene: Scene, rng: random.Random) -> list[tuple[float, float, float]]:
    """Centres and diameters, as fractions of the image, that match the scene's labels."""
    if scene.count == 1:
        diameter = rng.uniform(0.14, 0.2) if scene.size == "small" else rng.uniform(0.32, 0.42)
        near, far, across = (0.18, 0.3), (0.7, 0.82), (0.35, 0.65)
        low, high = diameter / 2 + 0.02, 1 - diameter / 2 - 0.02
        cx, cy = {
            "left": (rng.uniform(*near), rng.uniform(*across)),
            "right": (rng.uniform(*far), rng.uniform(*across)),
            "top": (rng.uniform(*across), rng.uniform(*near)),
            "bottom": (rng.uniform(*across), rng.uniform(*far)),
            "middle": (rng.uniform(0.44, 0.56), rng.uniform(0.44, 0.56)),
        }[scene.position or "middle"]
        return [(min(high, max(low, cx)), min(high, max(low, cy)), diameter)]

    diameter = rng.uniform(0.13, 0.18) if scene.size == "small" else rng.uniform(0.26, 0.31)
    placed: list[tuple[float, float, float]] = []
    margin = diameter / 2 + 0.03
    while len(placed) < scene.count:
        for _ in range(500):
            cx, cy = rng.uniform(margin, 1 - margin), rng.uniform(margin, 1 - margin)
            if all(math.dist((cx, cy), (x, y)) > diameter * 1.15 for x, y, _ in placed):
                placed.append((cx, cy, diameter))
                break
        else:  # crowded: start again
            placed.clear()
    return placed


def _draw_shape(draw, shape, cx, cy, diameter, colour, rng) -> None:
    r = diameter / 2
    if shape == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=colour)
    elif shape == "square":
        s = r * 0.9
        draw.rectangle((cx - s, cy - s, cx + s, cy + s), fill=colour)
    elif shape == "triangle":
        draw.polygon(
            [(cx, cy - r), (cx - r * 0.95, cy + r * 0.75), (cx + r * 0.95, cy + r * 0.75)],
            fill=colour,
        )
    elif shape == "star":
        turn = rng.uniform(-0.15, 0.15)
        points = []
        for k in range(10):
            radius = r if k % 2 == 0 else r * 0.45
            angle = -math.pi / 2 + turn + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
        draw.polygon(points, fill=colour)
    elif shape == "cross":
        arm = r * 0.34
        draw.rectangle((cx - r, cy - arm, cx + r, cy + arm), fill=colour)
        draw.rectangle((cx - arm, cy - r, cx + arm, cy + r), fill=colour)
    else:
        raise ValueError(f"unknown shape {shape!r}")


def scene_jpeg(scene: Scene, rng: random.Random) -> bytes:
    """``scene`` as a user would upload it: a few hundred pixels wide, JPEG-compressed."""
    side = rng.randint(256, 512)
    buffer = io.BytesIO()
    render(scene, (side, side)).save(buffer, format="JPEG", quality=rng.randint(80, 92))
    return buffer.getvalue()
