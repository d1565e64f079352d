"""Generated photos with text in them, labelled with the words they show: the OCR engines'
measurement set (``bench.ocr``), the tests' inputs and the demo gallery's text photos.

Each scene is a photo-like background (a gradient with blotches and noise, or a demo-model
shape scene) with one to three lines of text, in one of several fonts, sizes, contrasts and
languages, turned by 0/90/180/270 degrees (or a slight tilt).
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

FONT_DIRS = (Path("/usr/share/fonts/truetype/dejavu"), Path("/usr/share/fonts/truetype/liberation"))
FONT_FILES = (
    "DejaVuSans.ttf",
    "DejaVuSerif-Bold.ttf",
    "DejaVuSansMono.ttf",
    "LiberationSans-Regular.ttf",
    "LiberationSerif-Italic.ttf",
    "LiberationSansNarrow-Bold.ttf",
)

# Words people search their photos for, by language; accents included on purpose.
VOCABULARY = {
    "en": [
        "tesco",
        "receipt",
        "total",
        "hotel",
        "station",
        "exit",
        "platform",
        "coffee",
        "bakery",
        "pharmacy",
        "museum",
        "garden",
        "parking",
        "ticket",
        "invoice",
        "welcome",
        "market",
        "street",
        "harbour",
        "library",
        "theatre",
        "booking",
    ],
    "fr": [
        "café",
        "boulangerie",
        "gare",
        "sortie",
        "musée",
        "hôtel",
        "marché",
        "fermé",
        "ouvert",
        "élève",
        "rue",
    ],
    "de": [
        "straße",
        "bahnhof",
        "ausgang",
        "bäckerei",
        "öffnungszeiten",
        "größe",
        "küche",
        "brücke",
    ],
    "pt": ["pastelaria", "farmácia", "praça", "saída", "estação", "lisboa", "avenida"],
    "es": ["señal", "niño", "mañana", "farmacia", "estación", "salida", "plaza"],
}
CODES = ("AB12CD", "QX7734", "ZK9021", "MN4410", "RT5508")


@dataclass(frozen=True)
class TextScene:
    image: Image.Image
    words: tuple[str, ...]  # the words drawn, as written (accents and case kept)
    language: str
    font: str
    size: int
    rotation: int  # degrees counter-clockwise
    contrast: str  # "high" or "low"


def available_fonts() -> list[str]:
    """Font files on this machine from ``FONT_FILES``, plus Pillow's built-in font ("")."""
    found = [str(d / name) for name in FONT_FILES for d in FONT_DIRS if (d / name).exists()]
    return [*found, ""]


def _font(path: str, size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.truetype(path, size) if path else ImageFont.load_default(size=size)


def photo_background(rng: random.Random, size: tuple[int, int]) -> Image.Image:
    """A photo-like background: a two-colour gradient, soft blotches and sensor noise."""
    width, height = size
    top = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    bottom = np.array([rng.randint(0, 255) for _ in range(3)], dtype=np.float32)
    ramp = np.linspace(0.0, 1.0, height, dtype=np.float32)[:, None, None]
    pixels = np.broadcast_to(top * (1 - ramp) + bottom * ramp, (height, width, 3)).copy()
    image = Image.fromarray(pixels.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(rng.randint(3, 8)):
        x, y = rng.randrange(width), rng.randrange(height)
        r = rng.randint(width // 12, width // 4)
        colour = tuple(rng.randint(0, 255) for _ in range(3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    image = image.filter(ImageFilter.GaussianBlur(radius=max(width, height) / 40))
    noise = np.random.default_rng(rng.randrange(2**32)).normal(0, 6, (height, width, 3))
    return Image.fromarray(
        np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
    )


def text_scene(
    rng: random.Random,
    *,
    words: tuple[str, ...] | None = None,
    language: str | None = None,
    font: str | None = None,
    size: int | None = None,
    rotation: int | None = None,
    contrast: str | None = None,
    background: Image.Image | None = None,
    canvas: tuple[int, int] = (960, 720),
    per_line: int | None = None,
) -> TextScene:
    """One labelled scene; every choice not given is drawn from ``rng`` (``per_line``: words
    on a line, else one or two)."""
    language = language or rng.choice(sorted(VOCABULARY))
    if words is None:
        count = rng.randint(1, 4)
        words = tuple(rng.sample(VOCABULARY[language], count))
        if rng.random() < 0.2:
            words = (*words, rng.choice(CODES))
    font = font if font is not None else rng.choice(available_fonts())
    size = size or rng.choice((28, 40, 56, 80))
    rotation = rotation if rotation is not None else rng.choice((0, 0, 0, 90, 180, 270, 5, -8))
    contrast = contrast or rng.choice(("high", "high", "low"))
    image = (
        background.copy().resize(canvas)
        if background is not None
        else photo_background(rng, canvas)
    )
    face = _font(font, size)

    # The text is drawn on a transparent layer of its own size, turned, then laid over the
    # background where it fits whole.
    lines, line = [], []
    for word in words:
        line.append(word)
        if len(line) == (per_line or 2) or (per_line is None and rng.random() < 0.3):
            lines.append(" ".join(line))
            line = []
    if line:
        lines.append(" ".join(line))
    pixels = np.asarray(image, dtype=np.float32)
    base = pixels.mean(axis=(0, 1))
    line_height = int(size * 1.6)
    widths = [int(ImageDraw.Draw(image).textbbox((0, 0), text, font=face)[2]) for text in lines]
    layer = Image.new("RGBA", (max(widths) + 40, line_height * len(lines) + 30), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    for row, text in enumerate(lines):
        x, y = 16, 12 + row * line_height
        if contrast == "high":
            ink: tuple[int, ...] = (15, 15, 15) if base.mean() > 127 else (245, 245, 245)
            left, top, right, bottom = draw.textbbox((x, y), text, font=face)
            plate = (235, 235, 225) if ink[0] < 128 else (30, 30, 40)
            draw.rectangle((left - 8, top - 6, right + 8, bottom + 6), fill=(*plate, 230))
        else:
            shift = 70 if base.mean() < 128 else -70
            ink = tuple(int(min(255, max(0, c + shift))) for c in base)
        draw.text((x, y), text, font=face, fill=(*ink, 255))
    if rotation:
        layer = layer.rotate(rotation, expand=True, resample=Image.Resampling.BICUBIC)
    if layer.width > canvas[0] or layer.height > canvas[1]:
        layer.thumbnail(canvas)
    x = rng.randint(0, canvas[0] - layer.width)
    y = rng.randint(0, canvas[1] - layer.height)
    composed = image.convert("RGBA")
    composed.alpha_composite(layer, (x, y))
    composed = composed.convert("RGB")
    return TextScene(
        image=composed,
        words=words,
        language=language,
        font=Path(font).stem if font else "pillow-default",
        size=size,
        rotation=rotation,
        contrast=contrast,
    )


def scene_jpeg(scene: TextScene, *, quality: int = 90) -> bytes:
    out = io.BytesIO()
    scene.image.save(out, format="JPEG", quality=quality)
    return out.getvalue()
